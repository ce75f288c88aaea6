"""The `worldsmith` command: a thin typer app. Each group lives beside the code it drives.

Sub-command modules import heavy libraries (torch, ray, pybullet) inside their functions, so that
`worldsmith --help` and `--version` stay fast.
"""

from __future__ import annotations

import typer

from worldsmith import __version__
from worldsmith.curate.cli import app as curate_app
from worldsmith.data.cli import app as data_app
from worldsmith.eval.cli import app as eval_app
from worldsmith.guardrail.cli import app as guard_app
from worldsmith.tokenizer.cli import app as tokenizer_app
from worldsmith.train.cli import app as train_app

app = typer.Typer(
    name="worldsmith",
    help="An open world-foundation-model platform for physical AI.\n\n"
    "Example: worldsmith data generate robot --out data/robot --episodes 8",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(curate_app, name="curate")
app.add_typer(tokenizer_app, name="tokenizer")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(guard_app, name="guard")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"worldsmith {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """worldsmith: curate video, train tokenizers and world models, guard and evaluate them."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
