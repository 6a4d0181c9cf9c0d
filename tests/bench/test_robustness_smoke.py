"""Small run of `fedseed bench robustness`: a few hundred mutated inputs and ~50
schemathesis cases against a real registry process. Times are not asserted; the
outcome depends only on the fixed seed and the fixed keys."""

from __future__ import annotations

import json


def test_robustness_benchmark_accepts_nothing_wrongly_and_never_crashes(fedseed, tmp_path):
    # Execute
    run = fedseed("bench", "robustness", "--out", str(tmp_path), "--mutations", "300",
                  "--http-cases", "50")

    # Assert
    assert run.code == 0, run.err
    data = json.loads((tmp_path / "robustness.json").read_text())
    mutations, http = data["mutations"], data["http"]
    assert mutations["inputs"] == 300
    assert mutations["wrongly_accepted"] == 0
    assert mutations["crashed"] == 0
    assert {row["kind"] for row in mutations["probes"]} == {
        "envelope-dsse", "envelope-packed", "recipe", "client-reply", "meta-recipe"}
    assert http["cases"] == 50
    assert http["server_errors"] == 0
    assert http["schema_violations"] == 0
    assert http["blobs"]["stored_by_refused"] == 0
    assert "wrongly accepted" in (tmp_path / "robustness.md").read_text()
    assert (tmp_path / "robustness.png").read_bytes()[:4] == b"\x89PNG"
