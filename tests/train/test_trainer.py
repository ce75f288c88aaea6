import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from _trainer_toy import ToyModel, run
from worldsmith.train.trainer import (CheckpointError, TrainConfig, export_run, load_weights, lr_at,
                                     sample_indices)

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(100, cfg) == pytest.approx(0.1)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 100))


def test_sample_order_covers_each_epoch_once():
    idx = sample_indices(10, seed=3, start=0, count=20)
    assert sorted(idx[:10]) == list(range(10)) and sorted(idx[10:]) == list(range(10))
    assert idx[:10] != idx[10:]
    assert sample_indices(10, 3, 7, 5) == idx[7:12]


def test_run_dir_layout_and_learning(tmp_path):
    t = run(tmp_path / "r", steps=30, ckpt_every=10)
    for name in ("config.json", "train.json", "model.safetensors", "ema.safetensors", "train_state.safetensors",
                 "train_state.json", "log.jsonl", "loss.png"):
        assert (tmp_path / "r" / name).exists(), name
    assert json.loads((tmp_path / "r" / "config.json").read_text())["kind"] == "toy"
    curve = [l for _, l in losses(tmp_path / "r")]
    assert len(curve) == 30 and curve[-1] < 0.5 * curve[0]
    assert not list((tmp_path / "r").glob(".*tmp*"))
    m = ToyModel()
    assert load_weights(tmp_path / "r", m, ema=True) == 30
    ema = load_file(str(tmp_path / "r" / "ema.safetensors"))
    assert not torch.equal(ema["net.0.weight"], t.model.state_dict()["net.0.weight"])  # EMA lags the weights
    (tmp_path / "ship").mkdir()
    (tmp_path / "ship" / "README.md").write_text("kept")
    export_run(tmp_path / "r", tmp_path / "ship")
    shipped = load_file(str(tmp_path / "ship" / "ema.safetensors"))
    assert shipped["net.0.weight"].dtype == torch.float16 and (tmp_path / "ship" / "README.md").read_text() == "kept"
    m2 = ToyModel()
    assert load_weights(tmp_path / "ship", m2) == 30
    torch.testing.assert_close(m2.net[0].weight, ema["net.0.weight"], rtol=1e-3, atol=1e-3)


def test_resume_after_stop_is_bit_exact(tmp_path):
    run(tmp_path / "full")
    run(tmp_path / "cut", stop_after=7)        # preempted after step 7; last checkpoint at step 4
    assert max(s for s, _ in losses(tmp_path / "cut")) == 7
    run(tmp_path / "cut")                       # resumes from step 4, recomputes 5..12
    assert losses(tmp_path / "cut") == losses(tmp_path / "full")
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_kill9_of_a_real_process_is_bit_exact(tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, str(ROOT / "tests" / "train" / "_trainer_toy.py"), str(out), "--steps", "24", "--ckpt-every", "4", "--sleep", "0.05"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env())  # one thread, as here
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "train_state.json").exists() and (out / "log.jsonl").exists() and \
                max((s for s, _ in losses(out)), default=0) >= 10:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((out / "train_state.json").read_text())["step"] < 24
    run(out, steps=24)
    run(tmp_path / "ref", steps=24)
    assert losses(out) == losses(tmp_path / "ref")


@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_two_processes_match_one_process_with_accumulation(tmp_path, parallel):
    ref = run(tmp_path / "one", grad_accum=2, batch_size=2, precision="fp32")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "train" / "_trainer_toy.py"), str(tmp_path / "two"), "--grad-accum", "1", "--batch-size", "2",
           "--precision", "fp32", "--parallel", parallel]
    res = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [s for s, _ in one] == [s for s, _ in two]
    for (_, a), (_, b) in zip(one, two):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6)
    w2 = load_file(str(tmp_path / "two" / "model.safetensors"))
    for k, v in ref.model.state_dict().items():
        torch.testing.assert_close(w2[k], v, rtol=1e-4, atol=1e-5)


def test_resume_refuses_a_mixed_checkpoint(tmp_path):
    run(tmp_path / "r", steps=8)
    state = json.loads((tmp_path / "r" / "train_state.json").read_text())
    state["step"] = 4
    (tmp_path / "r" / "train_state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="holds step 8"):
        run(tmp_path / "r", steps=8)
