"""``fedseed bench ...``: benchmarks that write docs/results/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from fedseed.cli._common import console
from fedseed.defaults import ROBUSTNESS_SEED

app = typer.Typer(help="Run benchmarks; results go to docs/results/.", no_args_is_help=True)


def _timestamped() -> Callable[[str], None]:
    """A progress printer: each line prefixed with the seconds since the command began."""
    import time

    started = time.monotonic()

    def event(line: str) -> None:
        console.out(f"[{time.monotonic() - started:7.1f}s] {line}", highlight=False)

    return event


@app.command("overhead")
def overhead(
    out: Path = typer.Option(Path("docs/results"), help="Folder for overhead.{json,md,png}."),
    repeats: int = typer.Option(5, min=1, max=50, help="Alternating runs per loop."),
) -> None:
    """Training-loop overhead vs bare PyTorch, and peak memory of personalize."""
    from rich.progress import Progress

    from fedseed.bench import overhead as bench

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("overhead", total=repeats * len(bench.CASES))
        result = bench.run(out, repeats=repeats, on_run=lambda: bar.advance(task))
    for o in result["overhead"]:
        console.out(f"{o['recipe']:16} fedseed {o['fedseed_seconds']:.3f}s  bare "
                    f"{o['bare_seconds']:.3f}s  ratio {o['ratio']:.3f}", highlight=False)
    for m in result["memory"]:
        console.out(f"{m['recipe']:16} peak RSS {m['peak_rss_mib']:.1f} MiB", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("provenance")
def provenance(
    out: Path = typer.Option(Path("docs/results"), help="Folder for provenance.{json,md,png}."),
    seconds: float = typer.Option(3.0, min=0.1, max=600, help="Verification run length."),
    count: int = typer.Option(500, min=1, max=100_000, help="Recipes to publish."),
) -> None:
    """Envelope verifications per second (one core) and publishes per second."""
    from rich.progress import Progress

    from fedseed.bench import provenance as bench

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("provenance", total=2)
        result = bench.run(out, seconds=seconds, count=count, on_step=lambda: bar.advance(task))
    console.out(f"verify  {result['verify']['per_second']:,.0f}/s (target 5,000/s)\n"
                f"publish {result['publish']['per_second']:,.0f}/s (target 300/s)\n"
                "wrote " + ", ".join(result["written"]), highlight=False)


@app.command("personalization")
def personalization(
    config: Path = typer.Option(Path("simulations/personalization.toml"),
                                help="Scenarios and methods (TOML)."),
    out: Path = typer.Option(Path("docs/results"),
                             help="Folder for personalization.{json,md,png}."),
    scenario: list[str] = typer.Option([], help="Run only this scenario (repeatable)."),
) -> None:
    """Meta-recipes vs local-default, local-oracle, FedAvg and FedAvg + fine-tuning."""
    from fedseed.bench import personalization as bench

    event = _timestamped()

    with console.status("personalization benchmark"):
        result = bench.run(config, out, event, only=scenario)
    for s in result["scenarios"]:
        best = next(m for m in s["methods"] if m["method"] == s["best_fedseed"])
        default = next(m for m in s["methods"] if m["method"] == "local-default")
        console.out(f"{s['scenario']:18} {s['best_fedseed']:14} {best['mean']:.3f}  "
                    f"local-default {default['mean']:.3f}", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("text")
def text(
    config: Path = typer.Option(Path("simulations/text.toml"),
                                help="Scenarios and methods (TOML)."),
    out: Path = typer.Option(Path("docs/results"), help="Folder for text.{json,md,png}."),
    scenario: list[str] = typer.Option([], help="Run only this scenario (repeatable)."),
) -> None:
    """Federated fortunes: TF-IDF, local, fedseed, seed trajectories vs FedAvg, side by side."""
    from fedseed.bench import text as bench
    from fedseed.bench.text_report import best_personalised

    event = _timestamped()

    with console.status("text benchmark"):
        result = bench.run(config, out, event, only=scenario)
    for s in result["scenarios"]:
        best = best_personalised(s)
        if best is not None:
            console.out(f"{s['scenario']:22} {best['method']:24} mean test {s['metric']} "
                        f"{best['mean']:.3f}", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("budget")
def budget(
    config: Path = typer.Option(Path("simulations/budget.toml"),
                                help="Tasks, grids and starts (TOML)."),
    out: Path = typer.Option(Path("docs/results"), help="Folder for budget.{json,md,png}."),
    task: list[str] = typer.Option([], help="Run only this task (repeatable)."),
) -> None:
    """The minimal fine-tuning budget: samples x steps heat maps per start."""
    from fedseed.bench import budget as bench

    event = _timestamped()

    with console.status("budget benchmark"):
        result = bench.run(config, out, event, only=task)
    for t in result["tasks"]:
        verdicts = ", ".join(f"{start} {'holds' if v['holds'] else 'fails'}"
                             for start, v in t["claim"].items())
        console.out(f"{t['task']:20} reference {t['reference']['accuracy']:.3f}; "
                    f"<100 samples and <100 steps reach 95%: {verdicts}", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("bandwidth")
def bandwidth(
    out: Path = typer.Option(Path("docs/results"), help="Folder for bandwidth.{json,md,png}."),
    recipe: list[str] = typer.Option([], help="Measure only this built-in recipe (repeatable)."),
) -> None:
    """Time vs bandwidth: fetch a recipe and train to 95%, or download the weights."""
    from fedseed.bench import bandwidth as bench

    event = _timestamped()

    with console.status("bandwidth benchmark"):
        result = bench.run(out, event, recipes=recipe or bench.RECIPES)
    for r in result["recipes"]:
        cross = r["crossover_mbit"]
        console.out(f"{r['recipe']:18} fedseed faster below "
                    + ("never" if cross is None else f"{cross:,.3g} Mbit/s"), highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("seed-claims")
def seed_claims(
    out: Path = typer.Option(Path("docs/results"),
                             help="Folder for seed_claims.{json,md,png}."),
    recipe: list[str] = typer.Option([], help="Measure only this built-in recipe "
                                              "(repeatable)."),
    shapes: bool = typer.Option(True, help="Also size seeds of BERT-tiny (WordPiece) and "
                                           "ResNet-50 from their shapes."),
) -> None:
    """The roadmap's PCA seeds, reproduced: size, zero-shot, the init ablation, and
    pruning, int8 and gzip beside them."""
    from fedseed.bench import seed_claims as bench
    from fedseed.recipe.builtin import resolve_recipe

    models: tuple[tuple[str, str], ...] = bench.MODELS
    if recipe:
        for name in recipe:
            resolve_recipe(name)  # an unknown name: one line, exit 2
        known = dict(bench.MODELS)
        models = tuple((name, known.get(name, "digits")) for name in recipe)
    event = _timestamped()

    with console.status("seed-claims benchmark"):
        result = bench.run(out, event, models=models, with_shapes=shapes)
    for v in result["verdicts"]:
        console.out(f"{v['claim']}: {v['verdict']}", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("multi-task")
def multi_task(
    config: Path = typer.Option(Path("simulations/multi_task.toml"),
                                help="Users, tasks and schedules (TOML)."),
    out: Path = typer.Option(Path("docs/results"), help="Folder for multi_task.{json,md,png}."),
) -> None:
    """Users with different tasks in one federation vs per-task fedseed and FedAvg."""
    from fedseed.bench import multi_task as bench

    event = _timestamped()

    with console.status("multi-task benchmark"):
        result = bench.run(config, out, event)
    for t in result["targets"]:
        console.out(f"{t['task']:12} fedseed-shared {t['fedseed_shared']:.3f} vs local-default "
                    f"{t['local_default']:.3f} ({t['points']:+.1f} points: "
                    f"{'met' if t['met'] else 'missed'})", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("privacy")
def privacy(
    config: Path = typer.Option(Path("simulations/privacy.toml"),
                                help="Scenarios and target epsilons (TOML)."),
    out: Path = typer.Option(Path("docs/results"), help="Folder for privacy.{json,md,png}."),
    scenario: list[str] = typer.Option([], help="Run only this scenario (repeatable)."),
) -> None:
    """Privacy against utility: recipes and trajectory mode vs Flower's DP FedAvg."""
    from fedseed.bench import privacy as bench

    event = _timestamped()
    with console.status("privacy benchmark"):
        result = bench.run(config, out, event, only=scenario)
    for t in result["targets"]:
        console.out(f"{t['scenario']:20} {t['method']:10} epsilon 8: "
                    f"{t['points_lost']:+.1f} points vs no DP (allowed {t['allowed']:g}: "
                    f"{'met' if t['met'] else 'missed'}); beats Flower DP FedAvg: "
                    f"{'yes' if t['beats_flower'] else 'no'}", highlight=False)
    console.out("wrote " + ", ".join(result["written"]), highlight=False)


@app.command("trajectory")
def trajectory(
    out: Path = typer.Option(Path("docs/results"), help="Folder for trajectory.{json,md,png}."),
    repeats: int = typer.Option(3, min=1, max=50, help="Replays per case (median)."),
    recipe: list[str] = typer.Option(["digits-mlp", "text-bert-tiny"],
                                     help="Recipes to replay (repeatable)."),
    pool_size: list[int] = typer.Option([1024, 4096], help="Pool sizes K (repeatable)."),
    memory_recipe: str = typer.Option("text-bert-tiny", help="Recipe of the memory test."),
    run_recipe: str = typer.Option("text-bert-tiny", help="Recipe of the communication run "
                                   "(FedAvg and trajectory federations on the same users)."),
    run_clients: int = typer.Option(4, min=2, max=64, help="Users in the communication run."),
    run_rounds: int = typer.Option(3, min=1, max=100, help="Rounds of each federation."),
    run_pool_size: int = typer.Option(512, min=1, max=4096, help="K of the trajectory run."),
    communication: bool = typer.Option(True, help="Run the communication federations."),
    first_order: bool = typer.Option(False, help="Only the first-order seed projection "
                                     "vs FedAvg comparison on digits "
                                     "(trajectory_first_order.{json,md,png})."),
    fo_users: int = typer.Option(20, min=2, max=200, help="first-order: users."),
    fo_rounds: int = typer.Option(40, min=1, max=200, help="first-order: rounds."),
    fo_k: int = typer.Option(600, min=1, max=65536, help="first-order: K per round."),
    fo_server_lr: float = typer.Option(1.0, min=1e-6, max=100, help="first-order: server lr."),
    fo_lr: float = typer.Option(0.01, min=1e-6, max=10,
                                help="first-order: local lr of both federations (constant)."),
    fo_dtype: str = typer.Option("float16", help="first-order: coefficients on the wire "
                                 "(float32 or float16)."),
    fo_robust: bool = typer.Option(True, help="first-order: median-norm clipping."),
    fo_fedavg: bool = typer.Option(True, help="first-order: also run Flower FedAvg."),
) -> None:
    """Seed trajectories: replay time, bit-exact replay, client memory vs first-order,
    meta-recipe bytes on the wire, and communication over a run against FedAvg."""
    from fedseed.bench import trajectory as bench
    from fedseed.errors import FedseedError
    from fedseed.recipe.builtin import resolve_recipe

    if first_order:
        from fedseed.bench import first_order as fo

        if fo_dtype not in ("float32", "float16"):
            raise FedseedError(f"--fo-dtype {fo_dtype!r}: use float32 or float16")
        settings_fo = fo.FirstOrderSettings(users=fo_users, rounds=fo_rounds, k=fo_k,
                                            server_lr=fo_server_lr, lr=fo_lr, dtype=fo_dtype,
                                            robust=fo_robust, fedavg=fo_fedavg)
        with console.status("first-order seed projection") as status:
            done = fo.run(out, settings_fo, on_step=lambda text: status.update(text))
        for t in done["targets"]:
            console.out(f"{t['target']}: {'met' if t['met'] else 'missed'} ({t['value']})",
                        highlight=False)
        console.out("wrote " + ", ".join(done["written"]), highlight=False)
        return

    if any(not 1 <= k <= 4096 for k in pool_size):
        raise FedseedError(f"--pool-size {pool_size}: every K must be in 1..4096")
    for name in {*recipe, memory_recipe, run_recipe}:
        resolve_recipe(name)  # an unknown recipe fails now, before anything runs
    cases = [(name, k) for name in recipe for k in pool_size]
    settings = bench.RunSettings(recipe=run_recipe, clients=run_clients, rounds=run_rounds,
                                 pool_size=run_pool_size) if communication else None
    with console.status("trajectory benchmark") as status:
        result = bench.run(out, repeats=repeats, on_step=lambda text: status.update(text),
                           cases=cases, memory_recipe=memory_recipe, communication=settings)
    for r in result["replay"]:
        console.out(f"replay {r['recipe']:15} K={r['pool_size']:5}  {r['seconds']:.2f}s  "
                    f"meta {r['packed_bytes']:,} B packed ({r['dsse_json_bytes']:,} B as "
                    "DSSE JSON)", highlight=False)
    comm = result["communication"]
    if comm is not None:
        console.out(f"communication over {comm['settings']['rounds']} rounds, "
                    f"{comm['settings']['recipe']}: FedAvg / trajectory = {comm['ratio']:,.0f}x",
                    highlight=False)
    # Not ``fo``: that name is the first_order module above.
    zo_mem, fo_mem = result["memory"]["zeroth_order"], result["memory"]["first_order"]
    console.out(f"bit-exact: {result['bit_exact']['identical']}; client peak RSS zeroth-order "
                f"{zo_mem['peak_mib']:.0f} MiB vs first-order {fo_mem['peak_mib']:.0f} MiB\n"
                "wrote " + ", ".join(result["written"]), highlight=False)


@app.command("robustness")
def robustness(
    out: Path = typer.Option(Path("docs/results"), help="Folder for robustness.{json,md,png}."),
    mutations: int = typer.Option(12_000, min=5, max=1_000_000,
                                  help="Mutated inputs, split evenly over the five kinds."),
    http_cases: int = typer.Option(1_200, min=1, max=100_000,
                                   help="schemathesis cases against the HTTP registry."),
    seed: int = typer.Option(ROBUSTNESS_SEED,
                             help="The hypothesis seed (recorded in the results)."),
) -> None:
    """Mutated envelopes, recipes, replies and meta-recipes against every reader,
    verifier and judge; the HTTP registry fuzzed from its OpenAPI document."""
    from rich.progress import Progress

    from fedseed.bench import robustness as bench

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("robustness", total=mutations // 5 * 5 + http_cases)
        result = bench.run(out, mutations=mutations, http_cases=http_cases, seed=seed,
                           on_case=lambda kind: bar.update(task, advance=1, description=kind))
    fuzz, http = result["mutations"], result["http"]
    console.out(f"{fuzz['inputs']:,} inputs: wrongly accepted {fuzz['wrongly_accepted']}, "
                f"crashed {fuzz['crashed']}, wrongly refused {fuzz['wrongly_refused']}\n"
                f"{http['cases']:,} HTTP cases: 5xx {http['server_errors']}, schema violations "
                f"{http['schema_violations']}, blobs stored by refused requests "
                f"{http['blobs']['stored_by_refused']}\n"
                "wrote " + ", ".join(result["written"]), highlight=False)


@app.command("pretrained-base")
def pretrained_base(
    out: Path = typer.Option(Path("docs/results"),
                             help="Folder for pretrained_base.{json,md,png}."),
    seconds: float = typer.Option(240.0, min=1.0, max=86_400, help="Pretraining wall clock."),
    corpus: Path = typer.Option(None, help="Corpus text (default: the KJV Bible exported "
                                "from Debian's bible-kjv to $FEDSEED_HOME/corpora)."),
) -> None:
    """text-bert-tiny pretrained on the KJV Bible, then fortunes-10 from scratch vs base."""
    from fedseed.bench import pretrained_base as bench

    result = bench.run(out, seconds, corpus)
    runs = result["personalize"]
    console.out(f"base {result['base']}: test accuracy scratch "
                f"{runs['scratch']['test_accuracy']:.3f}, base {runs['base']['test_accuracy']:.3f}"
                f"; wrote {out}/pretrained_base.{{json,md,png}}", highlight=False)
