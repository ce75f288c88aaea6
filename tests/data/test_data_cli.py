"""`worldsmith data generate | info | view` through the real typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import fake_sources
from episode_fixtures import frame_level_index
from worldsmith.cli import app
from worldsmith.data.lerobot import LeRobotDataset
from worldsmith.video import probe

runner = CliRunner()


@pytest.fixture
def fake(monkeypatch):
    fake_sources.register(monkeypatch)


def _generate(out, *extra):
    return runner.invoke(app, ["data", "generate", "fake", "--out", str(out), "--episodes", "3", "--frames", "9",
                               "--size", "32", "--seed", "4", *extra])


def test_generate_writes_a_dataset_and_refuses_to_overwrite(tmp_path, fake):
    out = tmp_path / "fake"
    result = _generate(out, "--set", "shade=3")
    assert result.exit_code == 0, result.output
    ds = LeRobotDataset(out)
    assert ds.num_episodes == 3 and ds.lengths == [9, 9, 9]
    assert ds.episode(2).meta == {"episode": 2, "seed": 4, "shade": 3}
    np.testing.assert_array_equal(frame_level_index(ds.frames(1)), np.arange(9))
    assert [p.name for p in tmp_path.iterdir()] == ["fake"]  # no temp folder left beside it

    again = _generate(out)
    assert again.exit_code == 1
    assert "error:" in again.stderr and "not empty" in again.stderr and "--overwrite" in again.stderr
    assert "Traceback" not in again.output

    replaced = _generate(out, "--episodes", "2", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert LeRobotDataset(out).num_episodes == 2


def test_generate_failures_leave_nothing_behind(tmp_path, fake):
    out = tmp_path / "broken"
    result = runner.invoke(app, ["data", "generate", "broken", "--out", str(out), "--episodes", "2", "--frames", "5",
                                 "--size", "16"])
    assert result.exit_code == 1
    assert "error: source 'broken' failed: RuntimeError: simulator crashed" in result.stderr
    assert list(tmp_path.iterdir()) == []
    unknown = runner.invoke(app, ["data", "generate", "nosuch", "--out", str(out)])
    assert unknown.exit_code == 1 and "unknown source 'nosuch'" in unknown.stderr
    bad_option = _generate(out, "--set", "colour=red")
    assert bad_option.exit_code == 1 and "unknown options ['colour']" in bad_option.stderr
    bad_set = _generate(out, "--set", "shade")
    assert bad_set.exit_code == 1 and "expected key=value" in bad_set.stderr
    assert list(tmp_path.iterdir()) == []


def test_info_and_view(tmp_path, fake):
    out = tmp_path / "ds"
    assert _generate(out).exit_code == 0
    result = runner.invoke(app, ["data", "info", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["episodes"], info["frames"], info["fps"]) == (3, 27, 10.0)
    assert info["features"]["action"] == {"dtype": "float32", "shape": [7]}
    assert info["tasks"] == {"task 0": 2, "task 1": 1} and info["size_bytes"] > 0
    table = runner.invoke(app, ["data", "info", str(out)])
    assert table.exit_code == 0 and "camera.pose" in table.stdout and "3 episodes" in table.stdout

    png = tmp_path / "sheet.png"
    assert runner.invoke(app, ["data", "view", str(out), "--episode", "1", "--out", str(png)]).exit_code == 0
    with Image.open(png) as im:
        assert im.width > 8 * 64 and im.height > 128  # 9 frames -> a row of 8 and a row of 1, with captions
    gif, mp4 = tmp_path / "ep.gif", tmp_path / "ep.mp4"
    assert runner.invoke(app, ["data", "view", str(out), "--out", str(gif)]).exit_code == 0
    with Image.open(gif) as im:
        assert im.n_frames == 9
    assert runner.invoke(app, ["data", "view", str(out), "--out", str(mp4)]).exit_code == 0
    assert probe(mp4).frame_count == 9


def test_info_and_view_errors(tmp_path, fake):
    missing = runner.invoke(app, ["data", "info", str(tmp_path / "none")])
    assert missing.exit_code == 1 and missing.stderr.strip() == f"error: {tmp_path / 'none'}: no such folder"
    out = tmp_path / "ds"
    assert _generate(out).exit_code == 0
    bad_ep = runner.invoke(app, ["data", "view", str(out), "--episode", "7", "--out", str(tmp_path / "x.png")])
    assert bad_ep.exit_code == 1 and "no episode 7" in bad_ep.stderr
    bad_ext = runner.invoke(app, ["data", "view", str(out), "--out", str(tmp_path / "x.bmp")])
    assert bad_ext.exit_code == 1 and "unsupported output type '.bmp'" in bad_ext.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("command", [["data", "generate"], ["data", "info"], ["data", "view"], ["demo"]])
def test_help_has_an_example(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Example: worldsmith" in result.stdout
