"""Tiny run of `fedseed bench overhead`: it runs and writes its files. Times are not
asserted (they are the benchmark's output, not a test's)."""

from __future__ import annotations

import json


def test_overhead_benchmark_writes_json_markdown_and_png(tmp_path):
    from fedseed.bench import overhead

    result = overhead.run(tmp_path, repeats=1, cases=(("digits-mlp", "digits"),), steps=20)

    data = json.loads((tmp_path / "overhead.json").read_text())
    assert data["overhead"][0]["recipe"] == "digits-mlp"
    assert data["overhead"][0]["ratio"] > 0
    assert data["memory"][0]["peak_rss_mib"] > 0
    assert "| digits-mlp |" in (tmp_path / "overhead.md").read_text()
    assert (tmp_path / "overhead.png").read_bytes()[:4] == b"\x89PNG"
    assert len(result["written"]) == 3
