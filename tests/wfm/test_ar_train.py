"""AR training through the shared trainer: resume equality, the DV token cache, loading a run."""

import json

import numpy as np
import pytest
import torch

from worldsmith.config import save_json, to_dict
from worldsmith.train.trainer import TrainConfig
from worldsmith.wfm.ar_train import (ARError, ARRunConfig, TokenDataset, build_token_cache, load_ar_model,
                                     load_token_cache, run_config, train_ar)
from worldsmith.wfm.gpt import GPTConfig

torch.set_num_threads(1)


def small_run() -> ARRunConfig:
    return ARRunConfig(preset="test", model=GPTConfig(dim=32, depth=2, heads=2, kv_heads=1, grid=[2, 4, 4]))


def token_data(n=6) -> TokenDataset:
    g = torch.Generator().manual_seed(0)
    return TokenDataset(torch.randint(0, 64000, (n, 2, 4, 4), generator=g, dtype=torch.int32),
                        torch.randn(n, 384, generator=g))


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path):
    cfg = TrainConfig(steps=6, batch_size=2, lr=1e-3, warmup_steps=2, log_every=1, ckpt_every=3, precision="fp32")
    train_ar(small_run(), cfg, tmp_path / "full", show_progress=False, dataset=token_data())
    train_ar(small_run(), cfg, tmp_path / "cut", show_progress=False, dataset=token_data(), stop_after=4)
    train_ar(small_run(), cfg, tmp_path / "cut", show_progress=False, dataset=token_data())   # resumes at 3
    full, cut = losses(tmp_path / "full"), losses(tmp_path / "cut")
    assert len(full) == 6 and full == cut
    assert full[-1] < full[0]
    model, run = load_ar_model(tmp_path / "cut")
    assert run.model == small_run().model and not model.training


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ARError, match="config.json"):
        load_ar_model(tmp_path)
    save_json({"kind": "diffusion"}, tmp_path / "config.json")
    with pytest.raises(ARError, match="not an AR run"):
        load_ar_model(tmp_path)


def test_resume_with_another_model_config_is_refused(tmp_path):
    cfg = TrainConfig(steps=1, batch_size=2, log_every=1, ckpt_every=1, precision="fp32")
    train_ar(small_run(), cfg, tmp_path, show_progress=False, dataset=token_data())
    other = small_run()
    other.model.dim = 64
    with pytest.raises(ARError, match="different model config"):
        train_ar(other, cfg, tmp_path, show_progress=False, dataset=token_data())


def random_dv_tokenizer(run_dir):
    """A randomly initialised dv-4x8x8 tokenizer saved as a run directory (real code path, untrained)."""
    from safetensors.torch import save_file

    from worldsmith.tokenizer.model import build_tokenizer, preset_config

    torch.manual_seed(0)
    tokenizer = build_tokenizer("dv-4x8x8")
    save_json({"kind": "tokenizer", "model": to_dict(preset_config("dv-4x8x8"))}, run_dir / "config.json")
    save_file(tokenizer.state_dict(), str(run_dir / "model.safetensors"))
    return tokenizer


def test_predictor_encodes_generates_and_decodes(tmp_path):
    from worldsmith.predict import load_predictor
    from worldsmith.wfm.ar_predict import ARPredictor

    random_dv_tokenizer(tmp_path / "tok")
    run = ARRunConfig(preset="test", model=GPTConfig(dim=32, depth=1, heads=2, kv_heads=1, grid=[3, 2, 2]))
    run.data.tokenizer = str(tmp_path / "tok")
    data = TokenDataset(torch.randint(0, 64000, (4, 3, 2, 2), dtype=torch.int32))
    train_ar(run, TrainConfig(steps=1, batch_size=2, precision="fp32"), tmp_path / "ar", show_progress=False,
             dataset=data)
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    out = ARPredictor(tmp_path / "ar").predict(video, 4)
    assert out.shape == (2, 3, 9, 16, 16) and out.abs().max() <= 1
    p = load_predictor(tmp_path / "ar")                   # the shared `worldsmith predict` / `eval rollout` path
    assert p.predict(video, 4).shape == (2, 3, 4, 16, 16)
    p8 = load_predictor(tmp_path / "ar", compensate=0, int8=True)   # int8 reaches the AR model through the loader
    assert any(type(m).__module__.startswith("torch.ao") for m in p8.p.model.modules())
    assert p8.predict(video, 4).shape == (2, 3, 4, 16, 16)
    with pytest.raises(ARError, match="1 \\+ a multiple of 4"):
        ARPredictor(tmp_path / "ar").predict(video[:, :, :4], 4)


def test_token_cache_encodes_once_with_a_dv_tokenizer(tmp_path):
    from safetensors.torch import save_file

    from worldsmith.tokenizer.model import build_tokenizer, preset_config
    from worldsmith.video import write_video

    videos = tmp_path / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        write_video(videos / f"clip{i}.mp4", rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8), fps=10)
    tok = tmp_path / "tok"
    random_dv_tokenizer(tok)
    run = run_config("tiny", [str(videos)], str(tok), ["data.clip_frames=9", "data.split=all", "data.stride=1"])
    path = build_token_cache(run.data, tmp_path / "cache", show_progress=False)
    data = load_token_cache(path)
    assert data.tokens.shape == (2, 3, 8, 8) and data.text.shape == (2, 384)
    mtime = path.stat().st_mtime_ns
    assert build_token_cache(run.data, tmp_path / "cache", show_progress=False) == path
    assert path.stat().st_mtime_ns == mtime                            # reused, not re-encoded
    # a CV tokenizer is refused with the file named
    save_json({"kind": "tokenizer", "model": to_dict(preset_config("cv-4x8x8"))}, tok / "config.json")
    save_file(build_tokenizer("cv-4x8x8").state_dict(), str(tok / "model.safetensors"))
    with pytest.raises(ARError, match="DV tokenizer"):
        build_token_cache(run.data, tmp_path / "cache2", show_progress=False)
