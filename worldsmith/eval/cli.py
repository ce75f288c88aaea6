"""CLI group: Evaluate models against ground truth and baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from worldsmith.predict import (COMPENSATE_OPTION, GUIDANCE_OPTION, MODEL_OPTION, SEED_OPTION, STEPS_OPTION,
                                 TEMPERATURE_OPTION, TOKENIZER_OPTION, load_cli_predictor)

app = typer.Typer(help="Evaluate models against ground truth and baselines.", no_args_is_help=True)


@app.command("rollout")
def rollout(
    model: Path = MODEL_OPTION,
    data: list[Path] = typer.Option(..., "--data", help="Episode dataset(s); held-out (val/test) episodes are used."),
    json_out: Path = typer.Option(..., "--json", help="Where to write the results (JSON)."),
    horizon: int = typer.Option(16, "--horizon", help="Frames to roll out after the context."),
    max_clips: int = typer.Option(32, "--max-clips", help="At most this many held-out windows."),
    steps: int = STEPS_OPTION,
    guidance: float = GUIDANCE_OPTION,
    temperature: float | None = TEMPERATURE_OPTION,
    seed: int = SEED_OPTION,
    plot: Path = typer.Option(None, "--plot", help="Also write the PSNR-by-horizon plot (png)."),
    tokenizer: Path = TOKENIZER_OPTION,
    compensate: float = COMPENSATE_OPTION,
    captions: bool = typer.Option(True, "--captions/--no-captions", help="Condition each clip on its episode's "
                                  "task text (default), or roll out from frames alone."),
    samples: int = typer.Option(1, "--samples", help="Also score the mean of this many sampled rollouts per clip "
                                "(model_mean: the conditional-mean estimate; 1: off)."),
    all_episodes: bool = typer.Option(False, "--all-episodes", help="Use every episode, not only the val/test "
                                      "split (for a dataset the model never trained on, e.g. another seed)."),
) -> None:
    """PSNR and SSIM at each horizon on held-out episodes, against copy-last-frame and the tokenizer's ceiling.

    Example: worldsmith eval rollout --model checkpoints/diffusion-robot-tiny --data data/robot --json eval.json
    """
    import sys

    from worldsmith.config import save_json
    from worldsmith.eval.rollout import evaluate_rollout, plot_psnr

    try:
        p = load_cli_predictor(model, tokenizer, compensate, steps, guidance, temperature)
        splits = ("train", "val", "test") if all_episodes else ("val", "test")
        res = evaluate_rollout(p, [str(d) for d in data], horizon=horizon, max_clips=max_clips, seed=seed,
                               splits=splits, captions=captions, samples=samples)
    except Exception as e:  # one line, no traceback: the messages name the file and the problem
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(1)
    res["model"] = str(model)
    save_json(res, json_out)
    if plot:
        plot_psnr(res, plot, title=model.name)
    m = res["mean_psnr"]
    raw = f", uncompensated {m['model_raw']:.2f} dB" if "model_raw" in m else ""
    raw += f", mean of {samples} samples {m['model_mean']:.2f} dB" if "model_mean" in m else ""
    typer.echo(f"{res['clips']} clips, horizons 1-{horizon}: PSNR model {m['model']:.2f} dB{raw}, copy-last "
               f"{m['copy_last']:.2f} dB, tokenizer {m['tokenizer']:.2f} dB (gain {res['psnr_gain_over_copy_db']:+.2f} dB)"
               f" -> {json_out}")
