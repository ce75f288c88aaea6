"""CLI group: Guardrails: text pre-guard and video post-guard."""

from __future__ import annotations

import typer

app = typer.Typer(help="Guardrails: text pre-guard and video post-guard.", no_args_is_help=True)
