"""`worldsmith predict`: roll a world model out from real frames and write the prediction (beside the ground truth
when there is one). Dispatches on the run's config.json "kind", so every world model plugs in the same way.

A predictor has `context_frames`, `predict(context (B,3,Tc,H,W) in [-1,1], num_frames, prompt=None, seed=0)` ->
(B, 3, num_frames, H, W), and `reconstruct(video)`; `load_predictor` builds one for a run directory.
Library use (the demo):

    from worldsmith.predict import load_predictor, predict_episode
    p = load_predictor("checkpoints/diffusion-robot-tiny")
    info = predict_episode(p, "data/robot", episode=3, frames=16, out="pred.mp4")
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from worldsmith.wfm.compensation import DEFAULT_TAU


def load_predictor(run_dir: str | os.PathLike, device: str = "cpu", tokenizer: str | None = None,
                   compensate: float | None = DEFAULT_TAU, **kw):
    """The predictor for a run directory, chosen by config.json "kind" ("diffusion", "ar").

    `compensate`: the tau of pixel-space compensation of the tokenizer's error (`worldsmith.wfm.compensation`);
    None or 0 predicts the decoded latents as they are. `kw` goes to the model's predictor (diffusion: steps,
    guidance, ...; ar: int8)."""
    from worldsmith.train.trainer import CheckpointError, read_run_config
    from worldsmith.wfm.compensation import CompensatedPredictor

    kind = read_run_config(run_dir).get("kind")
    if kind == "diffusion":
        from worldsmith.wfm.rollout import DiffusionPredictor

        p = DiffusionPredictor(run_dir, device=device, tokenizer=tokenizer, **kw)
    elif kind == "ar":
        p = _ARAdapter(run_dir, device=device, tokenizer=tokenizer, **kw)
    else:
        raise CheckpointError(f"{Path(run_dir) / 'config.json'}: kind {kind!r} is not a world model (diffusion, ar)")
    return CompensatedPredictor(p, compensate) if compensate else p


class _ARAdapter:
    """The AR engineer's ARPredictor behind the common predictor interface."""
    kind = "ar"

    def __init__(self, run_dir, device="cpu", tokenizer=None, int8: bool = False):
        from worldsmith.wfm.ar_predict import ARPredictor

        self.p = ARPredictor(run_dir, tokenizer, device=device, int8=int8)
        self.tokenizer, self.st = self.p.tokenizer, self.p.st

    @property
    def context_frames(self) -> int:
        return 1 + self.st

    def predict(self, context, num_frames, prompt=None, seed=0, progress=None):
        import torch

        torch.manual_seed(seed)
        text = None
        if prompt:
            from worldsmith.text import embed_texts

            text = torch.from_numpy(embed_texts([prompt] * context.shape[0]))
        Tc = context.shape[2]
        return self.p.predict(context, num_frames, text=text)[:, :, Tc:Tc + num_frames]

    def reconstruct(self, video):
        return self.tokenizer.decode(self.tokenizer.encode(video)).clamp(-1, 1)


def _video_tensor(frames):
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [-1, 1]."""
    import torch

    from worldsmith.video import to_float

    return torch.from_numpy(to_float(frames)).permute(1, 0, 2, 3)[None]


def _to_frames(video):
    """(1, 3, T, H, W) float -> (T, H, W, 3) uint8."""
    import numpy as np

    return np.ascontiguousarray(((video[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy())


def predict_frames(predictor, frames, num_frames: int, prompt: str | None = None, seed: int = 0, progress=None):
    """(T, H, W, 3) uint8 context (its last `context_frames` are used) -> (num_frames, H, W, 3) uint8."""
    c = min(predictor.context_frames, len(frames))
    st = getattr(predictor, "st", 4)
    c = 1 + st * ((c - 1) // st)
    ctx = _video_tensor(frames[len(frames) - c:])
    return _to_frames(predictor.predict(ctx, num_frames, prompt=prompt, seed=seed, progress=progress))


def episode_task(data_dir, episode: int) -> str:
    """The task string of dataset episode `episode` (ValueError naming the dataset when there is no such episode)."""
    from worldsmith.data.reader import LeRobotDataset

    return _check_episode(LeRobotDataset(data_dir), data_dir, episode).tasks[episode]


def _check_episode(ds, data_dir, episode: int):
    """`ds` (a LeRobotDataset), or ValueError naming the dataset when it has no episode `episode`."""
    if not 0 <= episode < ds.num_episodes:
        raise ValueError(f"{data_dir}: no episode {episode} (has {ds.num_episodes})")
    return ds


def predict_episode(predictor, data_dir, episode: int, frames: int, out, prompt: str | None = None, seed: int = 0,
                    size: int | None = None, guard=None, fps: float | None = None) -> dict:
    """Predict `frames` frames of dataset episode `episode` after its first context frames; write ground truth |
    prediction side by side to `out` (mp4). Returns PSNR per frame and paths.

    The model is conditioned on `prompt`, else on the episode's task. With a `guard`, the task passes its pre-guard
    first (`PromptRefused` when refused, nothing written) and the prediction its post-guard; an explicit `prompt`
    is the caller's to pre-guard, before spending compute on loading the model (`predict` does)."""
    import numpy as np

    from worldsmith.data.reader import LeRobotDataset
    from worldsmith.eval.metrics import psnr_per_frame
    from worldsmith.video import resize_video, write_video

    ds = _check_episode(LeRobotDataset(data_dir), data_dir, episode)
    if guard is not None and prompt is None:
        guard.require_prompt(ds.tasks[episode], f"{data_dir}: episode {episode} task")
    video = ds.frames(episode)
    size = size or getattr(predictor, "data", {}).get("size")
    if size and video.shape[1:3] != (size, size):
        video = resize_video(video, size)
    c = predictor.context_frames
    if len(video) < c + 1:
        raise ValueError(f"{data_dir}: episode {episode} has {len(video)} frames, fewer than {c} context + 1")
    frames = min(frames, len(video) - c)
    pred = predict_frames(predictor, video[:c], frames, prompt=prompt if prompt is not None else ds.tasks[episode],
                          seed=seed)
    if guard is not None:
        pred, _ = guard.guard_video(pred)
    truth = video[c:c + frames]
    psnr = psnr_per_frame(_video_tensor(pred), _video_tensor(truth))[0].tolist()
    side = np.concatenate([np.concatenate([video[:c], truth]), np.concatenate([video[:c], pred])], axis=2)
    write_video(out, side, fps or ds.fps)
    return {"out": str(out), "context_frames": c, "frames": frames, "psnr": [round(p, 3) for p in psnr]}


# Options that `predict` and `eval rollout` share: one definition, the same flags and help in both commands.
MODEL_OPTION = typer.Option(..., "--model", help="World-model run directory (diffusion or ar).")
STEPS_OPTION = typer.Option(12, "--steps", help="Sampler steps (diffusion).")
GUIDANCE_OPTION = typer.Option(1.0, "--guidance", help="Classifier-free guidance scale (diffusion, with a prompt).")
TEMPERATURE_OPTION = typer.Option(None, "--temperature", help="Starting-noise temperature (diffusion; default 0.2, "
                                  "picked on a calibration set): 1 samples the model's distribution, 0 gives a "
                                  "deterministic forecast.")
SEED_OPTION = typer.Option(0, "--seed", help="Sampling seed.")
TOKENIZER_OPTION = typer.Option(None, "--tokenizer", help="Tokenizer run (default: the one the model names).")
COMPENSATE_OPTION = typer.Option(DEFAULT_TAU, "--compensate", help="tau of the pixel-space compensation of the "
                                 "tokenizer's error (worldsmith.wfm.compensation); 0: off.")


def load_cli_predictor(model: Path, tokenizer: Path | None, compensate: float, steps: int, guidance: float,
                       temperature: float | None):
    """`load_predictor` with the shared options; the sampler options reach diffusion models only (temperature
    None: the predictor's default)."""
    kw = {"steps": steps, "guidance": guidance} if _kind(model) == "diffusion" else {}
    if temperature is not None and kw:
        kw["temperature"] = temperature
    return load_predictor(model, tokenizer=str(tokenizer) if tokenizer else None, compensate=compensate, **kw)


def predict_cmd(
    model: Path = MODEL_OPTION,
    video: Path = typer.Option(None, "--video", help="Input video: its first frames are the context."),
    data: Path = typer.Option(None, "--data", help="Episode dataset (with --episode): prediction beside ground truth."),
    episode: int = typer.Option(0, "--episode", help="Episode index in --data."),
    prompt: str = typer.Option(None, "--prompt", help="Text prompt (default: the episode's task)."),
    frames: int = typer.Option(16, "--frames", help="Frames to predict."),
    out: Path = typer.Option(..., "--out", help="Output mp4."),
    steps: int = STEPS_OPTION,
    guidance: float = GUIDANCE_OPTION,
    temperature: float | None = TEMPERATURE_OPTION,
    seed: int = SEED_OPTION,
    tokenizer: Path = TOKENIZER_OPTION,
    policy: Path = typer.Option(None, "--policy", help="Guardrail policy YAML (default policy when omitted)."),
    no_guard: bool = typer.Option(False, "--no-guard", help="Switch the guardrail off (logged, with a warning)."),
    compensate: float = COMPENSATE_OPTION,
) -> None:
    """Predict future frames with a world model from a video's first frames or a dataset episode.

    The prompt passes the guardrail's pre-guard and the output its post-guard (face blur).

    Example: worldsmith predict --model checkpoints/diffusion-robot-tiny --data data/robot --episode 3
    --frames 16 --out pred.mp4
    """
    import sys

    if (video is None) == (data is None):
        typer.echo("error: give exactly one of --video or --data", err=True)
        raise typer.Exit(2)
    from worldsmith.guardrail import Guardrail, PromptRefused

    guard = Guardrail.for_command(policy, no_guard, "predict")          # the guardrail call site
    try:
        # the text the model is conditioned on passes the pre-guard before any compute: the --prompt, else the
        # episode's task (a dataset's task strings are user input too)
        source = "--prompt"
        if data is not None and prompt is None:
            prompt, source = episode_task(data, episode), f"{data}: episode {episode} task"
        if prompt:
            guard.require_prompt(prompt, source)
    except PromptRefused as e:
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(3)
    except Exception as e:  # the dataset cannot be read: one line naming it
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(1)
    try:
        p = load_cli_predictor(model, tokenizer, compensate, steps, guidance, temperature)
        if data is not None:
            info = predict_episode(p, data, episode, frames, out, prompt=prompt, seed=seed, guard=guard)
            typer.echo(f"wrote {out}: ground truth | prediction, {info['frames']} frames, "
                       f"mean PSNR {sum(info['psnr']) / len(info['psnr']):.2f} dB")
        else:
            from worldsmith.video import probe, read_video, write_video

            size = getattr(p, "data", {}).get("size")
            src = read_video(video, end=p.context_frames, size=(size, size) if size else None)
            pred, _ = guard.guard_video(predict_frames(p, src, frames, prompt=prompt, seed=seed))
            write_video(out, pred, probe(video).fps or 10)
            typer.echo(f"wrote {out}: {len(pred)} predicted frames after {len(src)} context frames")
    except typer.Exit:
        raise
    except Exception as e:  # one line, no traceback: the messages name the file and the problem
        print(f"error: {e}", file=sys.stderr)
        raise typer.Exit(1)


def _kind(run_dir) -> str | None:
    from worldsmith.train.trainer import read_run_config

    return read_run_config(run_dir).get("kind")


def run_diffusion_demo(data_dir, out_dir, model="checkpoints/diffusion-robot-tiny", episodes: int = 3,
                       frames: int = 16, max_clips: int = 16, steps: int = 12, seed: int = 0,
                       show_progress: bool = True, guard=None) -> dict:
    """The world-model part of the demo: predict held-out episodes of `data_dir` (ground truth | prediction mp4s),
    evaluate PSNR/SSIM by horizon against copy-last-frame and the tokenizer ceiling, plot it. Returns paths and
    figures for the report:
    {"videos": [{"episode", "path", "psnr"}...], "eval": <evaluate_rollout dict>, "plot": path, "json": path}."""
    from worldsmith.config import save_json
    from worldsmith.data.clips import split_of
    from worldsmith.data.reader import LeRobotDataset
    from worldsmith.eval.rollout import evaluate_rollout, plot_psnr

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = load_predictor(model, steps=steps) if _kind(model) == "diffusion" else load_predictor(model)
    ds = LeRobotDataset(data_dir)
    held = [k for k in range(ds.num_episodes) if split_of(ds.name, k, 0.1, 0.1) != "train"] or list(range(ds.num_episodes))
    videos = []
    for k in held[:episodes]:
        path = out / f"predict_episode{k:03d}.mp4"
        info = predict_episode(p, data_dir, k, frames, path, seed=seed, guard=guard)
        videos.append({"episode": k, "path": str(path), "psnr": info["psnr"]})
    res = evaluate_rollout(p, [str(data_dir)], horizon=frames, max_clips=max_clips, seed=seed,
                           show_progress=show_progress)
    res["model"] = str(model)
    save_json(res, out / "rollout_eval.json")
    plot_psnr(res, out / "psnr_by_horizon.png", title=Path(model).name)
    return {"videos": videos, "eval": res, "plot": str(out / "psnr_by_horizon.png"),
            "json": str(out / "rollout_eval.json")}
