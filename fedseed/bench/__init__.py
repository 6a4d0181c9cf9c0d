"""Benchmarks: side by side in one run, ratios reported, results written under
``docs/results/`` as JSON, Markdown and PNG. Never asserted in timed tests."""
