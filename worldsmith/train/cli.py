"""CLI group: Train world models."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train world models.", no_args_is_help=True)
