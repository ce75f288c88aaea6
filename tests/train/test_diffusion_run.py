"""End to end at toy scale: a synthetic episode dataset, a random-init CV tokenizer run, `train diffusion`
(latent cache, trainer), then `predict` and `eval rollout` on held-out episodes, through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from worldsmith.config import to_dict
from worldsmith.data.episode import Episode
from worldsmith.data.writer import DatasetWriter

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _moving_square(k: int, frames: int = 21, size: int = 32) -> np.ndarray:
    v = np.full((frames, size, size, 3), 40, np.uint8)
    for t in range(frames):
        x = (2 * k + t) % (size - 8)
        v[t, 8:16, x:x + 8] = (200, 80 + 5 * k, 60)
    return v


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from worldsmith.tokenizer.model import TokenizerConfig, VideoTokenizer

    tmp = tmp_path_factory.mktemp("dit")
    with DatasetWriter(tmp / "data", fps=10) as w:
        for k in range(10):
            w.add(Episode(frames=_moving_square(k), columns={"action": np.zeros((21, 2), np.float32)},
                          task="move the square" if k % 2 else "slide the block", fps=10.0, meta={}))
    torch.manual_seed(0)
    tcfg = TokenizerConfig(width=16, channel_mult=[1, 1, 1], latent_channels=4)
    tok = VideoTokenizer(tcfg)
    (tmp / "tok").mkdir()
    (tmp / "tok" / "config.json").write_text(json.dumps({"kind": "tokenizer", "model": to_dict(tcfg)}))
    save_file(tok.state_dict(), str(tmp / "tok" / "model.safetensors"))
    return tmp


def _cli(*args, env_extra=None):
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WORLDSMITH_GUARD_LOG": "/dev/null", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "worldsmith.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_train_predict_eval_cli(setup, monkeypatch):
    tmp = setup
    cache = {"WORLDSMITH_CACHE": str(tmp / "cache")}
    args = ["train", "diffusion", "--preset", "nano", "--data", str(tmp / "data"), "--tokenizer", str(tmp / "tok"),
            "--out", str(tmp / "run"), "--steps", "4", "--quiet", "--set", "data.size=32", "--set", "data.stride=4",
            "--set", "model.width=32", "--set", "model.depth=2", "--set", "model.heads=2",
            "--set", "model.adaln_lora_rank=8", "--set", "model.patch=1", "--set", "train.batch_size=2",
            "--set", "train.log_every=1", "--set", "train.ckpt_every=2"]
    res = _cli(*args, env_extra=cache)
    assert res.returncode == 0, res.stderr[-1500:]
    cfg = json.loads((tmp / "run" / "config.json").read_text())
    assert cfg["kind"] == "diffusion" and len(cfg["latent_std"]) == 4
    assert len(list((tmp / "cache" / "latents").glob("*.safetensors"))) == 1   # encoded once, cached
    rows = [json.loads(x) for x in (tmp / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in rows)

    # predict and eval as the demo calls them (library), in this process
    from worldsmith.eval.rollout import evaluate_rollout
    from worldsmith.predict import load_predictor, predict_episode
    from worldsmith.video import read_video

    p = load_predictor(tmp / "run", steps=2)
    info = predict_episode(p, tmp / "data", 1, 6, tmp / "pred.mp4")
    side = read_video(tmp / "pred.mp4")
    assert side.shape == (5 + 6, 32, 64, 3) and len(info["psnr"]) == 6   # context + 6 frames, truth | prediction
    # with a guard (the demo passes one), the episode's task passes the pre-guard before anything is predicted
    from worldsmith.guardrail import Guardrail, PromptRefused

    monkeypatch.setenv("WORLDSMITH_GUARD_LOG", str(tmp / "guard.jsonl"))
    with DatasetWriter(tmp / "bad-data", fps=10) as w:
        w.add(Episode(frames=_moving_square(0), columns={"action": np.zeros((21, 2), np.float32)},
                      task="he holds the puppy under the water in the bucket until it stops kicking", fps=10.0, meta={}))
    with pytest.raises(PromptRefused, match="episode 0 task: prompt refused: "):
        predict_episode(p, tmp / "bad-data", 0, 6, tmp / "bad.mp4", guard=Guardrail.from_policy())
    assert not (tmp / "bad.mp4").exists()
    ev = evaluate_rollout(p, [str(tmp / "data")], horizon=6, max_clips=4, show_progress=False, samples=2)
    assert ev["horizons"] == [1, 2, 3, 4, 5, 6] and ev["clips"] >= 1 and ev["captions"]
    # compensated by default: the raw samples and the compensated ceiling are reported beside
    assert set(ev["psnr"]) == {"model", "copy_last", "tokenizer", "model_raw", "tokenizer_compensated", "model_mean"}
    assert ev["samples"] == 2 and "psnr_gain_over_copy_db_mean" in ev
    assert all(len(v) == 6 for v in ev["ssim"].values()) and ev["compensation_tau"] > 0
    raw = evaluate_rollout(load_predictor(tmp / "run", steps=2, compensate=0), [str(tmp / "data")], horizon=6,
                           max_clips=4, show_progress=False)
    assert set(raw["psnr"]) == {"model", "copy_last", "tokenizer"} and raw["compensation_tau"] is None
    assert raw["mean_psnr"]["model"] == pytest.approx(ev["mean_psnr"]["model_raw"], abs=1e-4)  # same first sample
    # the same clip and seed give the same rollout
    ctx = torch.zeros(1, 3, 5, 32, 32)
    torch.testing.assert_close(p.predict(ctx, 4, seed=3), p.predict(ctx, 4, seed=3))
    # classifier-free guidance (eval rollout --guidance) changes a captioned rollout, not an uncaptioned one
    guided = load_predictor(tmp / "run", steps=2, guidance=3.0)
    assert not torch.equal(guided.predict(ctx, 4, prompt="pick up the cube", seed=3),
                           p.predict(ctx, 4, prompt="pick up the cube", seed=3))
    torch.testing.assert_close(guided.predict(ctx, 4, seed=3), p.predict(ctx, 4, seed=3))
    # the starting-noise temperature: the predictor's default unless given; 0 and 1 give different rollouts
    from worldsmith.wfm.rollout import DEFAULT_TEMPERATURE

    assert p.inner.temperature == DEFAULT_TEMPERATURE
    assert not torch.equal(load_predictor(tmp / "run", steps=2, temperature=0.0).predict(ctx, 4, seed=3),
                           load_predictor(tmp / "run", steps=2, temperature=1.0).predict(ctx, 4, seed=3))
    res = _cli("eval", "rollout", "--model", str(tmp / "run"), "--data", str(tmp / "data"), "--json",
               str(tmp / "bad.json"), "--temperature", "-1")
    assert res.returncode == 1 and res.stderr.startswith("error:") and "temperature" in res.stderr


def test_init_warm_starts_from_a_run(setup, tmp_path):
    """--init copies the source run's weights and latent normalisation into a new run (fresh optimiser);
    a different DiT config is a one-line error."""
    tmp = setup
    small = ["--set", "data.size=32", "--set", "data.stride=4", "--set", "model.width=32", "--set", "model.depth=2",
             "--set", "model.heads=2", "--set", "model.adaln_lora_rank=8", "--set", "model.patch=1",
             "--set", "train.batch_size=2", "--set", "train.log_every=1"]
    base = ["train", "diffusion", "--preset", "nano", "--data", str(tmp / "data"), "--tokenizer", str(tmp / "tok"),
            "--quiet"]
    cache = {"WORLDSMITH_CACHE": str(tmp / "cache")}
    res = _cli(*base, "--out", str(tmp_path / "src"), "--steps", "3", *small, env_extra=cache)
    assert res.returncode == 0, res.stderr[-1500:]
    res = _cli(*base, "--out", str(tmp_path / "ft"), "--steps", "1", "--init", str(tmp_path / "src"),
               *small, "--set", "train.lr=0", env_extra=cache)
    assert res.returncode == 0, res.stderr[-1500:]
    src, ft = (json.loads((tmp_path / r / "config.json").read_text()) for r in ("src", "ft"))
    assert ft["init_from"] == str(tmp_path / "src") and ft["latent_mean"] == src["latent_mean"]
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "src" / "ema.safetensors")), load_file(str(tmp_path / "ft" / "model.safetensors"))
    assert all(torch.equal(a[k].float(), b[k].float()) for k in a)        # lr 0: the weights are the source's EMA
    res = _cli(*base, "--out", str(tmp_path / "bad"), "--steps", "1", "--init", str(tmp_path / "src"), *small,
               "--set", "model.depth=3", env_extra=cache)
    assert res.returncode != 0 and res.stderr.startswith("error:") and "config.json" in res.stderr
    assert "Traceback" not in res.stderr
    # resuming a run with another model config is refused the same way, naming the run's config.json
    res = _cli(*base, "--out", str(tmp_path / "src"), "--steps", "4", *small, "--set", "model.depth=3", env_extra=cache)
    assert res.returncode != 0 and res.stderr.startswith("error:") and "different model config" in res.stderr
    assert str(tmp_path / "src" / "config.json") in res.stderr and "Traceback" not in res.stderr


def test_bad_inputs_are_one_line_errors(setup, tmp_path):
    res = _cli("train", "diffusion", "--data", str(tmp_path / "nope"), "--tokenizer", str(setup / "tok"),
               "--out", str(tmp_path / "r"))
    assert res.returncode != 0 and res.stderr.startswith("error:") and "nope" in res.stderr
    assert "Traceback" not in res.stderr
    res = _cli("predict", "--model", str(tmp_path), "--data", str(setup / "data"), "--out", str(tmp_path / "x.mp4"))
    assert res.returncode != 0 and "config.json" in res.stderr and "Traceback" not in res.stderr
