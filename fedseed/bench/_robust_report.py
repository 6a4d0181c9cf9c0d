"""The robustness benchmark's Markdown and PNG, from its JSON payload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedseed.bench.report import save_figure


def markdown(payload: dict[str, Any]) -> str:
    """``docs/results/robustness.md``."""
    fuzz, http = payload["mutations"], payload["http"]
    lines = [
        "# Robustness: mutated inputs and the HTTP registry", "",
        "`fedseed bench robustness` (part of `make bench`). Hypothesis draws the inputs "
        f"(seed {fuzz['seed']}, hypothesis {fuzz['hypothesis']}, no shrinking, no "
        "deadlines); every key and signature is real. Targets: **0** accepted that should "
        "have been refused, **0** crashes that are not a `FedseedError`, **0** 5xx, **0** "
        "responses outside the OpenAPI document, **0** blobs stored by a refused request.",
        "",
        f"{fuzz['inputs']:,} inputs ({fuzz['mutated']:,} mutated, "
        f"{fuzz['unmutated_controls']:,} unmutated controls) in {fuzz['seconds']} s.", "",
        "| input kind | consumer | tried | accepted | wrongly accepted | crashed | "
        "refused correctly | wrongly refused |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in fuzz["probes"]:
        lines.append(f"| {row['kind']} | `{row['consumer']}` | {row['tried']:,} | "
                     f"{row['accepted']:,} | **{row['wrongly_accepted']}** | "
                     f"**{row['crashed']}** | {row['refused_correctly']:,} | "
                     f"{row['wrongly_refused']} |")
    lines += ["", f"Totals: wrongly accepted **{fuzz['wrongly_accepted']}**, crashed "
              f"**{fuzz['crashed']}**, wrongly refused {fuzz['wrongly_refused']}.", ""]
    lines += ["## Mutation families", "",
              "| input kind | families (inputs) |", "|---|---|"]
    seen = set()
    for row in fuzz["probes"]:
        if row["kind"] in seen:
            continue
        seen.add(row["kind"])
        families = ", ".join(f"{k} {v:,}" for k, v in row["families"].items())
        lines.append(f"| {row['kind']} | {families} |")
    lines += ["", "Families: `control` unchanged; `reencode` whitespace, key order and "
              "`\\uXXXX` escapes; `b64` base64 variants (URL-safe, unpadded, mixed, with "
              "whitespace, junk, extra or inner padding, non-canonical last character); "
              "`bytes` 1-3 bit flips, byte writes, truncations, deletions, insertions, "
              "duplicated slices, junk before or after; `tree` a JSON node replaced by a "
              "hostile value (NaN, Infinity, 1e999, 5,000-digit integers, 2^63, 2^64, -0, "
              "lone surrogates, 70,000-character strings, up to 200,000 levels of nesting), "
              "retyped, wrapped, deleted, added, renamed, swapped or written twice (a "
              "duplicate JSON key); `envelope` signatures dropped, doubled, 17 of them, key "
              "ids swapped, emptied or missing, payload or signature from another envelope, "
              "`payload` or `payloadType` twice; `resign` payload or payload type mutated "
              "and signed again by a trusted, unknown, revoked or wrong-role key, or keeping "
              "the old signatures; `header`, `header-reencode`, `recompress`, `framing` the "
              "packed header mutated, re-spaced, re-compressed (levels 0-9, with or without "
              "the dictionary, every zlib strategy), varint and blob framing broken; "
              "`scenario` a client reply as sent (fresh, by another key, replayed from round "
              "0, for another assignment or round; node bound or not; tofu or store; the "
              "public key swapped or damaged; already seen this round); `claims` a reply's "
              "signed claims edited and signed again (parent, round, producer, budget, "
              "learning rate, evidence). Inputs are also handed to the readers as text now "
              "and then (their API takes `bytes | str`).", ""]
    lines += ["## Oracles: what \"should have been refused\" means", ""]
    lines += [f"- `{name}`: {text}" for name, text in payload["oracles"].items()]
    lines += ["", "## HTTP registry (schemathesis)", "",
              f"schemathesis {http['schemathesis']}, driven by the real server's "
              "`/openapi.json` (a `fedseed registry serve` process on 127.0.0.1); "
              f"{http['cases']:,} cases in {http['seconds']} s, checks: "
              + ", ".join(f"`{c}`" for c in http["checks"]) + ".", "",
              "| measure | result | target |", "|---|---:|---:|",
              f"| cases | {http['cases']:,} | >= 1,000 |",
              f"| 5xx responses | **{http['server_errors']}** | 0 |",
              f"| schema violations (check failures other than 5xx) | "
              f"**{http['schema_violations']}** | 0 |",
              f"| blobs stored by a refused request | **{http['blobs']['stored_by_refused']}**"
              " | 0 |",
              f"| blobs stored by a read | {http['blobs']['stored_by_reads']} | 0 |",
              f"| blobs before / after | {http['blobs']['before']} / "
              f"{http['blobs']['after']} | after - before = stored by 2xx "
              f"({http['blobs']['stored_by_2xx']}) |", "",
              "| operation (mode) | cases |", "|---|---:|"]
    lines += [f"| {op} | {n:,} |" for op, n in http["operations"].items()]
    lines += ["", "Statuses: " + ", ".join(f"{k}: {v:,}" for k, v in http["statuses"].items())
              + ".", "", f"Machine: {payload['machine']['cores']} cores, Python "
              f"{payload['machine']['python']}. Times depend on the machine; the counts do "
              "not (fixed seed, fixed keys).", ""]
    return "\n".join(lines)


def plot(path: Path, payload: dict[str, Any]) -> Path:
    """Accepted vs refused inputs per (kind, consumer), failures in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = payload["mutations"]["probes"]
    labels = [f"{r['kind']}\n{r['consumer']}" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(rows) + 1.8))
    left = [0] * len(rows)
    for key, color, name in (("accepted", "#55a868", "accepted (rightly)"),
                             ("refused_correctly", "#4c72b0", "refused (rightly)"),
                             ("wrongly_refused", "#dd8452", "wrongly refused"),
                             ("wrongly_accepted", "#c44e52", "wrongly accepted"),
                             ("crashed", "#8c1c13", "crashed")):
        values = [r[key] for r in rows]
        ax.barh(labels, values, left=left, color=color, label=name)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("inputs")
    ax.set_title("mutated inputs: what each consumer did")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.5 / len(rows) - 0.1),
              ncol=3, frameon=False)
    ax.tick_params(axis="y", labelsize=7)
    return save_figure(fig, path)
