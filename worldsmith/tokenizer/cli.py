"""CLI group: Causal video tokenizers: train, encode, decode, eval."""

from __future__ import annotations

import typer

app = typer.Typer(help="Causal video tokenizers: train, encode, decode, eval.", no_args_is_help=True)
