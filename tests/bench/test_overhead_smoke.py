"""Tiny run of `fedseed bench overhead`: it runs and writes its files. Times and memory
are not asserted (they are the benchmark's output, not a test's)."""

from __future__ import annotations

import json


def test_overhead_benchmark_writes_json_markdown_and_png(tmp_path):
    from fedseed.bench import overhead

    result = overhead.run(tmp_path, repeats=1, cases=(("digits-mlp", "digits"),), steps=20)

    data = json.loads((tmp_path / "overhead.json").read_text())
    assert data["overhead"][0]["recipe"] == "digits-mlp"
    assert data["overhead"][0]["ratio"] > 0
    memory = data["memory"][0]
    assert memory["peak_rss_mib"] > 0
    # The peak is that of the real command on a CSV file, which starts no child and
    # reads the file without datasets, pandas or pyarrow.
    assert memory["command"].startswith("fedseed personalize digits-mlp --data digits.csv")
    assert memory["children"] == 0
    assert memory["heavy_imports"] == []
    markdown = (tmp_path / "overhead.md").read_text()
    assert "| digits-mlp |" in markdown
    assert "Target for text-bert-tiny: <= 512 MiB" in markdown
    assert (tmp_path / "overhead.png").read_bytes()[:4] == b"\x89PNG"
    assert len(result["written"]) == 3
