"""The `physics` source: falling, bouncing, sliding bodies with positions, velocities, projections and masks."""

import numpy as np
import pytest

from worldsmith.sources import generate, physics
from worldsmith.sources._bullet import project


def _episodes(**kw):
    kw = {"episodes": 3, "frames": 12, "size": 64, "seed": 0, **kw}
    return list(physics.generate(**kw))


def test_shapes_and_dtypes(check_episode_layout):
    (ep,) = generate("physics", episodes=1, frames=6, size=64, seed=1, max_objects=3)
    T, N = 6, 3
    expected = {
        "object.position": ((T, N, 3), np.float32),
        "object.velocity": ((T, N, 3), np.float32),
        "object.orientation": ((T, N, 4), np.float32),
        "object.projection": ((T, N, 2), np.float32),
        "object.visible": ((T, N), np.int64),
        "object.count": ((T,), np.int64),
        "object.mask": ((T, 64, 64), np.uint8),
        "camera.pose": ((T, 4, 4), np.float32),
        "camera.intrinsics": ((T, 3, 3), np.float32),
    }
    n = check_episode_layout(ep, expected, frames=T, size=64)
    assert 1 <= n <= N and ep.columns["object.mask"].max() <= n
    assert not ep.columns["object.position"][:, n:].any() and not ep.columns["object.visible"][:, n:].any()
    assert ep.fps == physics.FPS and ep.task


def test_deterministic_by_seed():
    a, b, c = _episodes(seed=4, episodes=2, frames=6), _episodes(seed=4, episodes=2, frames=6), _episodes(seed=5, episodes=2, frames=6)
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes() and x.task == y.task
        for name in x.columns:
            assert x.columns[name].tobytes() == y.columns[name].tobytes(), name
    assert a[0].frames.tobytes() != c[0].frames.tobytes()


def test_projected_centres_fall_inside_their_masks():
    hits = total = 0
    for ep in _episodes(seed=2, episodes=4, frames=10, max_objects=4):
        n = int(ep.columns["object.count"][0])
        mask, uv, visible = ep.columns["object.mask"], ep.columns["object.projection"], ep.columns["object.visible"]
        # projection column = the camera model applied to the position column
        K, pose = ep.columns["camera.intrinsics"][0].astype(np.float64), ep.columns["camera.pose"][0].astype(np.float64)
        np.testing.assert_allclose(project(ep.columns["object.position"][:, :n], K, pose)[0], uv[:, :n], atol=1e-3)
        for t in range(len(mask)):
            for i in range(n):
                area = (mask[t] == i + 1).sum()
                assert bool(visible[t, i]) == (area > 0)
                if area < 4:
                    continue
                u, v = np.round(uv[t, i]).astype(int)
                window = mask[t, max(v - 1, 0) : v + 2, max(u - 1, 0) : u + 2]
                total += 1
                hits += bool((window == i + 1).any())
    assert total >= 20
    assert hits / total >= 0.9, (hits, total)  # misses only where another body occludes the centre


def test_masks_match_the_rendered_colours():
    (ep,) = _episodes(seed=6, episodes=1, frames=4)
    mask, frames = ep.columns["object.mask"], ep.frames.astype(int)
    for i in range(int(ep.columns["object.count"][0])):
        pix = frames[mask == i + 1]
        if len(pix) >= 4:  # an object's pixels are saturated, unlike the grey ground
            assert (pix.max(-1) - pix.min(-1)).mean() > 60


@pytest.mark.parametrize("scenario", physics.SCENARIOS)
def test_objects_move_and_velocities_match_positions(scenario):
    (ep,) = physics.generate(1, 14, size=32, seed=9, scenario=scenario)
    n = int(ep.columns["object.count"][0])
    pos, vel = ep.columns["object.position"][:, :n].astype(np.float64), ep.columns["object.velocity"][:, :n]
    assert np.linalg.norm(pos[-1] - pos[0], axis=-1).max() > 0.1
    assert np.abs(ep.frames[-1].astype(int) - ep.frames[0].astype(int)).mean() > 0.5
    # central differences approximate the recorded velocity (loosely: bounces happen between frames)
    finite = (pos[2:] - pos[:-2]) * physics.FPS / 2
    err = np.linalg.norm(finite - vel[1:-1], axis=-1)
    assert np.median(err) < 0.25 * max(np.median(np.linalg.norm(vel, axis=-1)), 0.2)
    if scenario == "fall":
        assert (pos[:, :, 2].min(0) < pos[0, :, 2] - 0.1).all()  # everything falls
    if scenario == "slide":
        assert np.abs(pos[:, :, 2] - pos[0, :, 2]).max() < 0.05  # stays on the ground
    words = {"fall": "fall", "slide": "slide", "throw": "thrown"}[scenario]
    assert words in ep.task


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="unknown scenario"):
        next(physics.generate(1, 2, scenario="explode"))
    with pytest.raises(ValueError, match="max_objects"):
        next(physics.generate(1, 2, max_objects=0))
