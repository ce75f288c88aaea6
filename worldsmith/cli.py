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
from worldsmith.predict import predict_cmd
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
app.command("predict")(predict_cmd)


@app.command()
def demo(
    out: str = typer.Option("demo_out", "--out", help="Folder for the datasets, contact sheets and report.html."),
    episodes: int = typer.Option(2, "--episodes", help="Episodes per source."),
    frames: int = typer.Option(17, "--frames", help="Frames per episode."),
    size: int = typer.Option(64, "--size", help="Frame side in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed for every source."),
    no_guard: bool = typer.Option(False, "--no-guard", help="Turn the guardrail off (logged)."),
    world_models: bool = typer.Option(True, "--world-models/--sources-only",
                                      help="Also predict held-out robot futures with the shipped world models."),
) -> None:
    """Run the platform end to end at tiny scale: every source -> dataset -> contact sheets; then held-out robot
    futures predicted by the shipped diffusion and AR world models (guarded), evaluated against copy-last-frame
    -> report.html.

    Example: worldsmith demo --out demo_out
    """
    from worldsmith.demo import DemoConfig, run_demo

    models = ("diffusion-robot-tiny", "ar-robot-tiny") if world_models else ()
    ctx = run_demo(DemoConfig(out=out, episodes=episodes, frames=frames, size=size, seed=seed, no_guard=no_guard,
                              models=models))
    failed = [f"{r.step}/{r.name}" for r in ctx.results if not r.ok]
    typer.echo(f"report: {ctx.out / 'report.html'}")
    if failed:
        typer.echo(f"error: {len(failed)} failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


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
