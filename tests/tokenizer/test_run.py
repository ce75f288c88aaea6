"""Tokenizer runs through the shared trainer: resume equality, load errors, and the CLI."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from worldsmith.cli import app
from worldsmith.tokenizer.run import TokenizerError, load_tokenizer, run_config, train_tokenizer
from worldsmith.video import write_video

SMALL = ["model.width=16", "model.channel_mult=[1,1]", "data.size=32", "data.clip_frames=5", "data.stride=4",
         "data.split=all", "train.batch_size=1", "train.log_every=1", "train.ckpt_every=2", "train.warmup_steps=1"]


def _moving_square(t, size=32, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.zeros((t, size, size, 3), np.uint8)
    frames[:] = rng.integers(0, 255, 3, dtype=np.uint8)
    for i in range(t):
        frames[i, 8:16, (2 * i) % 24:(2 * i) % 24 + 8] = 255
    return frames


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for k in range(2):
        write_video(root / f"clip{k}.mp4", _moving_square(13, seed=k), fps=10)
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, video_folder):
    out = tmp_path_factory.mktemp("run") / "cv"
    train_tokenizer(run_config("cv-4x8x8", [str(video_folder)], SMALL + ["train.steps=2"]), out, show_progress=False)
    return out


def _losses(run):
    return [r["loss"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "loss" in r]


def test_resume_continues_the_same_loss_curve(tmp_path, video_folder):
    cfg = run_config("dv-4x8x8", [str(video_folder)], SMALL + ["train.steps=4"])
    train_tokenizer(cfg, tmp_path / "straight", show_progress=False)
    train_tokenizer(cfg, tmp_path / "resumed", show_progress=False, stop_after=3)  # "killed" after step 3
    assert len(_losses(tmp_path / "resumed")) == 3
    train_tokenizer(cfg, tmp_path / "resumed", show_progress=False)  # resumes from the step-2 checkpoint
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    assert len(_losses(tmp_path / "straight")) == 4


def test_resume_with_another_preset_is_refused(trained_run, video_folder):
    with pytest.raises(TokenizerError, match="different model config"):
        train_tokenizer(run_config("dv-4x8x8", [str(video_folder)], SMALL + ["train.steps=3"]), trained_run,
                        show_progress=False)


def test_load_tokenizer_round_trip(trained_run):
    model = load_tokenizer(trained_run, preset="cv-4x8x8")
    assert model.config.kind == "cv" and not model.training
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        assert model.decode(model.encode(video)).shape == video.shape


def test_wrong_preset_is_a_clear_error(trained_run):
    with pytest.raises(TokenizerError, match="holds preset 'cv-4x8x8', not the requested 'dv-4x8x8'"):
        load_tokenizer(trained_run, preset="dv-4x8x8")


def test_config_that_does_not_fit_the_weights_is_a_clear_error(trained_run, tmp_path):
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(trained_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["width"] = 24
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerError, match="ema.safetensors: does not match preset"):
        load_tokenizer(run)


def test_corrupt_checkpoint_is_a_clear_error(trained_run, tmp_path):
    import shutil

    run = tmp_path / "corrupt"
    shutil.copytree(trained_run, run)
    data = (run / "ema.safetensors").read_bytes()
    (run / "ema.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(TokenizerError, match="ema.safetensors: corrupt checkpoint"):
        load_tokenizer(run)
    (run / "config.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="config.json: corrupt config"):
        load_tokenizer(run)
    with pytest.raises(TokenizerError, match="no such file"):
        load_tokenizer(tmp_path / "nowhere")


def test_cli_encode_decode_eval(trained_run, video_folder, tmp_path):
    runner = CliRunner()
    src = video_folder / "clip0.mp4"
    lat = tmp_path / "z.safetensors"
    res = runner.invoke(app, ["tokenizer", "encode", str(trained_run), str(src), str(lat)])
    assert res.exit_code == 0, res.output
    meta = json.loads(res.output)
    assert meta["num_frames"] == "13" and meta["shape"] == [1, 16, 4, 4, 4]  # 13 frames -> 1 + 3 latents
    out = tmp_path / "recon.mp4"
    res = runner.invoke(app, ["tokenizer", "decode", str(trained_run), str(lat), str(out)])
    assert res.exit_code == 0, res.output
    from worldsmith.video import read_video

    assert read_video(out).shape == (13, 32, 32, 3)
    res = runner.invoke(app, ["tokenizer", "eval", str(trained_run), "--videos", str(src), "--size", "32",
                              "--frames", "9", "--json", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["frames"] == 9 and np.isfinite(metrics["psnr"]) and metrics["encode_fps"] > 0


def test_cli_errors_are_one_line(trained_run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["tokenizer", "encode", str(tmp_path / "none"), "a.mp4", "b.safetensors"])
    assert res.exit_code == 1 and res.output.startswith("error: ") and "config.json: no such file" in res.output
    res = runner.invoke(app, ["tokenizer", "encode", str(trained_run), str(tmp_path / "missing.mp4"), "b.safetensors"])
    assert res.exit_code == 1 and "missing.mp4" in res.output and "Traceback" not in res.output
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    res = runner.invoke(app, ["tokenizer", "decode", str(trained_run), str(tmp_path / "bad.safetensors"), "o.mp4"])
    assert res.exit_code == 1 and "bad.safetensors" in res.output
    res = runner.invoke(app, ["tokenizer", "train", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "nodata: no such dataset" in res.output


def test_export_writes_a_small_loadable_checkpoint(trained_run, tmp_path):
    from worldsmith.tokenizer.run import export_checkpoint

    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "README.md").write_text("how to reproduce")
    export_checkpoint(trained_run, out)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "ema.safetensors", "log.jsonl",
                                                     "loss.png", "train.json"]
    assert (out / "ema.safetensors").stat().st_size < 0.6 * (trained_run / "ema.safetensors").stat().st_size
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    full, half = load_tokenizer(trained_run), load_tokenizer(out)
    with torch.no_grad():
        assert (full.decode(full.encode(video)) - half.decode(half.encode(video))).abs().max() < 1e-2


def test_dv_warm_start_from_a_cv_run(trained_run):
    from worldsmith.tokenizer.run import init_from_run

    cfg = run_config("dv-4x8x8", ["unused"], SMALL)
    from worldsmith.tokenizer.model import VideoTokenizer

    dv = VideoTokenizer(cfg.model)
    skipped = init_from_run(dv, trained_run)
    assert skipped == ["decoder.conv_in.weight", "encoder.conv_out.bias", "encoder.conv_out.weight"]
    cv = load_tokenizer(trained_run)
    assert torch.equal(dv.decoder.conv_out.weight, cv.decoder.conv_out.weight)


def test_decoder_only_finetune_keeps_the_latents_and_changes_the_decoder(trained_run, video_folder, tmp_path):
    out = tmp_path / "dec"
    cfg = run_config("cv-4x8x8", [str(video_folder)], SMALL + ["train.steps=3", "train.lr=0.01"])
    train_tokenizer(cfg, out, show_progress=False, init_from=trained_run, decoder_only=True)
    before, after = load_tokenizer(trained_run), load_tokenizer(out)
    video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    assert torch.equal(before.encode(video), after.encode(video))  # world models trained on these latents still fit
    assert not torch.equal(before.decoder.conv_out.weight, after.decoder.conv_out.weight)
    assert json.loads((out / "config.json").read_text())["finetune"] == "decoder"
    with pytest.raises(TokenizerError, match="--init"):
        train_tokenizer(cfg, tmp_path / "nothing", show_progress=False, decoder_only=True)


def test_clips_preload_only_within_the_memory_cap(video_folder):
    from worldsmith.tokenizer.run import open_clips

    cfg = run_config("cv-4x8x8", [str(video_folder)], SMALL)
    assert len(open_clips(cfg.data, cfg.model)._cache) == 2  # both 13-frame videos decoded up front
    cfg = run_config("cv-4x8x8", [str(video_folder)], SMALL + ["data.preload_max_gb=0.00001"])
    with pytest.warns(UserWarning, match="not preloading"):
        assert len(open_clips(cfg.data, cfg.model)._cache) == 0
