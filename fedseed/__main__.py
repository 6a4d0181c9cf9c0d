"""``python -m fedseed`` runs the CLI."""

from fedseed.cli import run

run()
