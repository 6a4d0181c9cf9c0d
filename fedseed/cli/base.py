"""``fedseed base``: the local store of pretrained bases (add, list, show, pretrain)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fedseed.cli._common import console, use_recipe

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer(help="Pretrained bases, pinned by digest, in $FEDSEED_HOME/bases.",
                  no_args_is_help=True)


@app.command("add")
def add(path: Path = typer.Argument(..., help="A .safetensors file or a local Hugging "
                                    "Face model folder (config.json + weights).")) -> None:
    """Copy a base into the store (verified, atomically) and print its digest."""
    from fedseed.bases.store import BaseStore

    produced_by = _sidecar(path)
    stored = BaseStore.default().add(path, produced_by=produced_by)
    console.out(f"{stored.digest} {stored.kind} {stored.info.get('bytes', 0):,} bytes "
                f"({stored.path})", highlight=False)


@app.command("list")
def list_bases() -> None:
    """Every base in the store: digest, kind, size, name."""
    from fedseed.bases.store import BaseStore

    bases = BaseStore.default().list()
    if not bases:
        console.out("no bases in the store; add one with `fedseed base add PATH`")
    for b in bases:
        console.out(f"{b.digest} {b.kind:<11} {b.info.get('bytes', 0):>12,} bytes "
                    f"{b.info.get('name', '')}", highlight=False)


@app.command("show")
def show(digest: str = typer.Argument(..., help="sha256:<hex> of a stored base.")) -> None:
    """Verify a stored base against its digest and print what is known about it."""
    from fedseed.bases.store import BaseStore

    b = BaseStore.default().resolve(digest)
    produced = dict(b.info.get("produced_by") or {})
    produced.pop("curve", None)
    console.out(f"digest   {b.digest} (verified)\nkind     {b.kind}\npath     {b.path}\n"
                f"bytes    {b.info.get('bytes', 0):,}\nname     {b.info.get('name', '')}",
                highlight=False)
    if produced:
        console.out("produced " + json.dumps(produced, sort_keys=True), highlight=False)


@app.command("pretrain")
def pretrain_cmd(
    ref: str = typer.Argument(..., help="Recipe (bert, distilbert or gpt2 architecture)."),
    corpus: list[Path] = typer.Option(..., "--corpus", help="Text file (repeatable)."),
    out: Path = typer.Option(..., "-o", "--out", help="New folder for base.safetensors "
                             "and base.json."),
    max_steps: int = typer.Option(2000, min=1, max=10_000_000, help="Step budget."),
    max_seconds: float = typer.Option(None, min=1.0, help="Wall-clock budget (seconds)."),
    batch_size: int = typer.Option(32, min=1, max=4096, help="Windows per step."),
    lr: float = typer.Option(1e-3, min=1e-6, max=1.0, help="AdamW learning rate."),
    seed: int = typer.Option(0, min=0, help="Initialisation and sampling seed."),
    add_: bool = typer.Option(False, "--add", help="Add the base to the store too."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="No progress bar."),
) -> None:
    """Pretrain a base offline: masked LM (BERT family) or causal LM (GPT-2)."""
    from fedseed._internal.atomic import check_output_folder
    from fedseed.bases.pretrain import (
        BASE_FILE,
        PretrainSettings,
        corpus_entries,
        objective_of,
        pretrain,
    )

    recipe = use_recipe(ref)
    objective = objective_of(recipe)
    check_output_folder(out)
    corpus_entries(corpus)  # missing or empty files: refused before torch loads
    settings = PretrainSettings(max_steps=max_steps, max_seconds=max_seconds,
                                batch_size=batch_size, lr=lr, seed=seed)
    with _Bar(objective, max_seconds, quiet) as on_step:
        info = pretrain(recipe, corpus, out, settings, progress=on_step)
    console.out(f"{info['steps']} steps in {info['seconds']:.1f}s: {objective} loss "
                f"{info['final_loss']:.4f} (held-out {info['val_loss']:.4f})\n"
                f"base: {out / BASE_FILE} {info['digest']}", highlight=False)
    if add_:
        from fedseed.bases.store import BaseStore

        stored = BaseStore.default().add(out / BASE_FILE, produced_by=info)
        console.out(f"added to the base store: {stored.digest}", highlight=False)


def _sidecar(path: Path) -> dict[str, object] | None:
    """``base.json`` next to a pretrained ``base.safetensors``, if there is one."""
    side = path.parent / "base.json" if path.is_file() else None
    if side is None or not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class _Bar:
    """Rich progress bar over steps, showing the loss and the time budget."""

    def __init__(self, objective: str, seconds: float | None, quiet: bool) -> None:
        self.objective, self.seconds, self.quiet = objective, seconds, quiet
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self):
        if self.quiet:
            return None

        def on_step(step: int, total: int, loss: float) -> None:
            if self.bar is None:
                self._start(total)
            assert self.bar is not None and self.task is not None  # _start set both
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}")

        return on_step

    def _start(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        budget = f" (budget {self.seconds:.0f}s)" if self.seconds else ""
        self.bar = Progress(TextColumn(f"pretraining {self.objective}{budget}"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                            TextColumn("loss {task.fields[loss]}"), console=console,
                            transient=True)
        self.bar.__enter__()
        self.task = self.bar.add_task("pretrain", total=total, loss="")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
