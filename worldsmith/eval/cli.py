"""CLI group: Evaluate models against ground truth and baselines."""

from __future__ import annotations

import typer

app = typer.Typer(help="Evaluate models against ground truth and baselines.", no_args_is_help=True)
