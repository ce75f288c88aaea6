"""Shared inputs for the curation tests: the synthetic compilation and a few small videos, made once."""

from __future__ import annotations

import pytest
from curate_helpers import sample, small_config

from worldsmith.video import read_video, write_video


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """The planted-problem compilation at 320x180 and its ground truth."""
    from worldsmith.curate.synth import synthesize

    path = tmp_path_factory.mktemp("synth") / "synth.mp4"
    gt = synthesize(path, size=(180, 320), seed=0)
    return path, gt


@pytest.fixture(scope="session")
def synth_run(synth, tmp_path_factory):
    from worldsmith.curate.config import CurateConfig
    from worldsmith.curate.inputs import expand_inputs
    from worldsmith.curate.run import curate

    out = tmp_path_factory.mktemp("synth_run")
    items, _ = expand_inputs([str(synth[0])])
    summary = curate(items, out, CurateConfig())
    return out, summary


@pytest.fixture(scope="session")
def small_inputs(tmp_path_factory):
    """Five short 160x96 videos: bikes shots (one with a cut inside) and a repeat of one of them."""
    folder = tmp_path_factory.mktemp("small_inputs")
    bikes = read_video(sample("bikes"), size=(96, 160))
    pieces = {"a_shots": bikes[0:60], "b_shot": bikes[80:136], "c_shot": bikes[140:186], "d_shot": bikes[190:240],
              "e_repeat": bikes[80:136]}
    for name, frames in pieces.items():
        write_video(folder / f"{name}.mp4", frames, 25.0, preset="ultrafast")
    return folder


@pytest.fixture(scope="session")
def small_clean_run(small_inputs, tmp_path_factory):
    """The reference: the local engine, one worker, uninterrupted, through the CLI's code path."""
    from worldsmith.curate.config import CurateConfig
    from worldsmith.curate.inputs import expand_inputs
    from worldsmith.curate.run import curate

    out = tmp_path_factory.mktemp("clean")
    items, _ = expand_inputs([str(small_inputs)])
    curate(items, out, small_config())
    return out


