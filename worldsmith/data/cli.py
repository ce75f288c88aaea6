"""CLI group: Episode datasets: generate, inspect, view."""

from __future__ import annotations

import typer

app = typer.Typer(help="Episode datasets: generate, inspect, view.", no_args_is_help=True)
