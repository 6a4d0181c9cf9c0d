"""The ``fedseed`` command line: parses arguments, calls the library, maps errors.

Only this package exits the process. Every :class:`~fedseed.errors.FedseedError` is
shown as one line on stderr with exit code 2 (bad input) or 1 (failed
verification). Heavy libraries (torch, transformers, datasets, flwr) are imported
inside the commands that need them, so ``fedseed --help`` starts fast; so is the
library itself, here and only here: its modules import each other at module level, so
one import at the top of a command module would pull in the recipe schema (about half
a second of pydantic model building) for every command, ``--help`` included.
"""

from __future__ import annotations

import sys

import typer

from fedseed.cli import (  # noqa: F401
    base,
    bench,
    commands,
    deploy,
    keys,
    recipe,
    registry,
    signing,
    simulate,
)

app = typer.Typer(
    name="fedseed",
    help="Federated personalization in which only small signed recipes travel.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(recipe.app, name="recipe")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(keys.trust_app, name="trust")
app.add_typer(registry.app, name="registry")
app.add_typer(deploy.app, name="deploy")
app.add_typer(bench.app, name="bench")
app.add_typer(base.app, name="base")
app.command("assemble")(commands.assemble_cmd)
app.command("personalize")(commands.personalize_cmd)
app.command("demo")(commands.demo_cmd)
app.command("simulate")(simulate.simulate_cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fedseed`` console script; returns the exit code."""
    import click

    from fedseed.errors import FedseedError

    command = typer.main.get_command(app)
    _unwind_on_sigterm()
    try:
        result = command.main(args=argv, prog_name="fedseed", standalone_mode=False)
    except FedseedError as e:
        print(f"error: {e.diagnostics()}", file=sys.stderr)
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def _unwind_on_sigterm() -> None:
    """Turn SIGTERM into an exception, so temporary outputs are removed on the way out
    (SIGKILL cannot be caught; what it interrupts stays hidden as a dot-file)."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, stop)


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    run()
