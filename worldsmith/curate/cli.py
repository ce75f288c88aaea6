"""CLI group: Curate raw video into training shards and a catalog."""

from __future__ import annotations

import typer

app = typer.Typer(help="Curate raw video into training shards and a catalog.", no_args_is_help=True)
