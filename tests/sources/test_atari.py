"""Atari source: shapes, determinism, and that the action column is what the emulator executed."""

import numpy as np
import pytest

from worldsmith.sources import atari, episode_rng_seed, generate


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_dtypes(size):
    (ep,) = generate("atari", 1, 6, size=size, seed=0)
    assert ep.frames.shape == (6, size, size, 3) and ep.frames.dtype == np.uint8
    assert ep.columns["action"].dtype == np.int64 and ep.columns["action"].shape == (6,)
    assert ep.columns["reward"].dtype == np.float32
    assert ep.task == "play breakout"
    assert ep.fps == pytest.approx(15.0)
    n = len(ep.meta["action_names"])
    assert ((0 <= ep.columns["action"]) & (ep.columns["action"] < n)).all()


def test_same_seed_same_bytes():
    a = list(generate("atari", 2, 12, seed=4))
    b = list(generate("atari", 2, 12, seed=4))
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes()
        for name in x.columns:
            assert x.columns[name].tobytes() == y.columns[name].tobytes()
    assert a[0].columns["action"].tobytes() != a[1].columns["action"].tobytes()


def test_actions_are_the_sticky_policy_and_replaying_them_reproduces_the_frames():
    seed, frames = 7, 40
    ep = list(generate("atari", 2, frames, seed=seed, game="pong", sticky=0.5))[1]  # episode 1 reuses the emulator
    actions = ep.columns["action"]
    # The column is exactly the sticky random policy drawn from the episode's seed ...
    rng = np.random.default_rng(episode_rng_seed(seed, 1))
    expected = atari.sticky_random_policy(rng, len(ep.meta["action_names"]), frames, 0.5)
    assert np.array_equal(actions, expected)
    # ... and it is what the emulator ran: replaying it in a fresh emulator gives the same screens.
    ale = atari.make_emulator("pong", ep.meta["ale_seed"])
    ale.reset_game()
    action_set = ale.getMinimalActionSet()
    assert [a.name for a in action_set] == ep.meta["action_names"]
    for t in range(frames):
        assert np.array_equal(atari._screen(ale, 64), ep.frames[t]), t
        for _ in range(ep.meta["frame_skip"]):
            ale.act(action_set[actions[t]])
    # Different actions would have given other screens (the replay is not trivially equal).
    assert np.abs(np.diff(ep.frames.astype(np.int16), axis=0)).sum() > 0


def test_stickiness_controls_repeats():
    rng = np.random.default_rng(0)
    always = atari.sticky_random_policy(rng, 6, 200, 1.0)
    assert (always == always[0]).all()
    never = atari.sticky_random_policy(rng, 6, 4000, 0.0)
    assert np.mean(never[1:] == never[:-1]) == pytest.approx(1 / 6, abs=0.03)
    sticky = atari.sticky_random_policy(rng, 6, 4000, 0.75)
    assert np.mean(sticky[1:] == sticky[:-1]) == pytest.approx(0.75 + 0.25 / 6, abs=0.03)


def test_frames_change_over_time():
    (ep,) = generate("atari", 1, 30, seed=1)
    changed = [not np.array_equal(ep.frames[t], ep.frames[t + 1]) for t in range(29)]
    assert sum(changed) >= 5


def test_bad_game_and_options():
    with pytest.raises(ValueError, match="unknown Atari game"):
        list(generate("atari", 1, 2, game="not_a_game"))
    with pytest.raises(ValueError, match="sticky"):
        list(generate("atari", 1, 2, sticky=2.0))
    with pytest.raises(ValueError, match="unknown options"):
        list(generate("atari", 1, 2, level=3))
