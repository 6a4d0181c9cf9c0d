"""Tiny run of `fedseed bench provenance`: it runs and writes its files."""

from __future__ import annotations

import json


def test_provenance_benchmark_writes_results(fedseed, tmp_path):
    run = fedseed("bench", "provenance", "--out", str(tmp_path), "--seconds", "0.2",
                  "--count", "20")

    assert run.code == 0, run.err
    data = json.loads((tmp_path / "provenance.json").read_text())
    assert data["publish"]["stored"] == 20
    assert data["verify"]["verifications"] > 0
    assert "verifications / s" in (tmp_path / "provenance.md").read_text()
    assert (tmp_path / "provenance.png").read_bytes()[:4] == b"\x89PNG"
