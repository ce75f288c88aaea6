"""The demo runs its steps, reports a failing source by name, goes on, and exits non-zero at the end."""

from __future__ import annotations

import sys
import types

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from worldsmith import sources
from worldsmith.cli import app
from worldsmith.data.episode import Episode
from worldsmith.data.lerobot import LeRobotDataset
from worldsmith.demo import DemoConfig, run_demo


def _source(fail: bool) -> types.ModuleType:
    mod = types.ModuleType(f"demo_test_source_{fail}")

    def generate(episodes, frames, size=64, seed=0, **options):
        if fail:
            raise RuntimeError("no simulator here")
        for e in range(episodes):
            ramp = np.linspace(0, 255, size, dtype=np.float32)
            img = np.stack([np.broadcast_to(ramp, (size, size))] * 3, -1).astype(np.uint8)
            frames_ = np.stack([np.roll(img, 3 * t, axis=1) for t in range(frames)])
            yield Episode(frames_, {"action": np.full((frames, 2), e, np.float32)}, f"slide {e}", 8.0)

    mod.generate = generate
    return mod


def _register(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "demo_test_source_False", _source(False))
    monkeypatch.setitem(sys.modules, "demo_test_source_True", _source(True))
    monkeypatch.setattr(sources, "SOURCES", {"good": "demo_test_source_False", "bad": "demo_test_source_True"})


def test_demo_reports_a_failing_source_and_goes_on(tmp_path, monkeypatch):
    _register(monkeypatch)
    logs = []
    ctx = run_demo(DemoConfig(out=str(tmp_path / "demo"), episodes=2, frames=9, size=32, models=()),
                   log=logs.append)
    by_name = {r.name: r for r in ctx.results}
    assert by_name["good"].ok and not by_name["bad"].ok
    assert "no simulator here" in by_name["bad"].detail
    assert any("FAILED" in line and "bad" in line for line in logs)
    out = tmp_path / "demo"
    assert LeRobotDataset(out / "data/good").num_episodes == 2
    assert (out / "sheets/good.png").is_file() and not (out / "sheets/bad.png").exists()
    with Image.open(out / "sources.png") as im:
        assert im.width > 8 * 96
    report = (out / "report.html").read_text()
    assert "good" in report and "FAILED" in report and "no simulator here" in report


def test_demo_command_exits_non_zero_when_a_source_failed(tmp_path, monkeypatch):
    _register(monkeypatch)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--episodes", "1", "--frames", "5",
                                      "--size", "16", "--sources-only"])
    assert result.exit_code == 1
    assert "error: 1 failed: sources/bad" in result.stderr
    assert (tmp_path / "d/report.html").is_file()


def test_demo_reports_a_missing_world_model_checkpoint_by_name(tmp_path):
    from worldsmith.demo import DemoContext, step_world_models

    cfg = DemoConfig(out=str(tmp_path), heldout_episodes=1, models=("no-such-model",))
    ctx = DemoContext(cfg, tmp_path)
    step_world_models(ctx)
    by_name = {r.name: r for r in ctx.results}
    assert by_name["held-out robot data"].ok
    assert not by_name["no-such-model"].ok and "no-such-model: no checkpoint" in by_name["no-such-model"].detail
