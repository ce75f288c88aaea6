"""CLI group: Evaluate models against ground truth and baselines."""

from __future__ import annotations

from pathlib import Path

import typer

from worldsmith.wfm.compensation import DEFAULT_TAU

app = typer.Typer(help="Evaluate models against ground truth and baselines.", no_args_is_help=True)


@app.command("rollout")
def rollout(
    model: Path = typer.Option(..., "--model", help="World-model run directory (diffusion or ar)."),
    data: list[Path] = typer.Option(..., "--data", help="Episode dataset(s); held-out (val/test) episodes are used."),
    json_out: Path = typer.Option(..., "--json", help="Where to write the results (JSON)."),
    horizon: int = typer.Option(16, "--horizon", help="Frames to roll out after the context."),
    max_clips: int = typer.Option(32, "--max-clips", help="At most this many held-out windows."),
    steps: int = typer.Option(12, "--steps", help="Sampler steps (diffusion)."),
    guidance: float = typer.Option(1.0, "--guidance", help="Classifier-free guidance scale (diffusion, with captions)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Starting-noise temperature (diffusion; "
                                      "default 0.2, picked on a calibration set): 1 samples the model's "
                                      "distribution, 0 gives a deterministic forecast."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    plot: Path = typer.Option(None, "--plot", help="Also write the PSNR-by-horizon plot (png)."),
    tokenizer: Path = typer.Option(None, "--tokenizer", help="Tokenizer run (default: the one the model names)."),
    compensate: float = typer.Option(DEFAULT_TAU, "--compensate", help="tau of the pixel-space compensation of the "
                                     "tokenizer's error (worldsmith.wfm.compensation); 0: off."),
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
    from worldsmith.predict import _kind, load_predictor

    try:
        kw = {"steps": steps, "guidance": guidance} if _kind(model) == "diffusion" else {}
        if temperature is not None and kw:
            kw["temperature"] = temperature
        p = load_predictor(model, tokenizer=str(tokenizer) if tokenizer else None, compensate=compensate, **kw)
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
