"""Driving source: shapes, determinism, the camera model against the rasterizer, the bicycle model."""

import numpy as np
import pytest

from worldsmith.sources import driving, episode_rng_seed, generate
from worldsmith.sources._render import scale_intrinsics


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_dtypes(size):
    (ep,) = generate("driving", 1, 5, size=size, seed=1, vehicles=3)
    T = 5
    assert ep.frames.shape == (T, size, size, 3) and ep.frames.dtype == np.uint8
    expect = {
        "ego.pose": (T, 3), "ego.speed": (T,), "ego.steering": (T,), "action": (T, 2), "observation.state": (T, 5),
        "camera.pose": (T, 4, 4), "camera.intrinsics": (T, 3, 3), "vehicles.position": (T, 3, 3), "vehicles.yaw": (T, 3),
    }
    for name, shape in expect.items():
        assert ep.columns[name].shape == shape, name
        assert ep.columns[name].dtype == np.float32, name
    assert ep.task in driving.SCENARIOS.values()
    K = ep.columns["camera.intrinsics"][0]
    assert K[0, 2] == pytest.approx((size - 1) / 2) and K[0, 0] > 0


def test_same_seed_same_bytes_other_seed_differs():
    a = list(generate("driving", 2, 4, seed=11))
    b = list(generate("driving", 2, 4, seed=11))
    c = list(generate("driving", 1, 4, seed=12))
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes()
        assert x.columns.keys() == y.columns.keys()
        for name in x.columns:
            assert x.columns[name].tobytes() == y.columns[name].tobytes(), name
    assert a[0].frames.tobytes() != c[0].frames.tobytes()
    # episode k depends only on (seed, k): it can be regenerated alone
    assert a[1].frames.tobytes() != a[0].frames.tobytes()


def test_frames_show_motion():
    (ep,) = generate("driving", 1, 10, seed=2, scenario="lane_keep")
    assert np.abs(np.diff(ep.frames.astype(np.int16), axis=0)).mean() > 1.0


def test_camera_columns_project_vehicle_centres_onto_their_pixels():
    """Project each vehicle's recorded centre with the recorded pose and K: the rasterizer drew that vehicle there."""
    seed, frames, size = 5, 12, 64
    checked = 0
    for k in range(3):
        rng = np.random.default_rng(episode_rng_seed(seed, k))
        scene = driving.make_scene(rng, frames, size, scenario="lane_keep", cfg=driving.DrivingConfig(vehicles=8))
        images = np.stack([driving.render_frame(scene, t)[0] for t in range(frames)])
        ep = driving.episode_from_scene(scene, images, seed, k)
        ss = 2
        for t in range(0, frames, 3):
            rgb, ids = driving.render_frame(scene, t, with_ids=True)
            assert np.array_equal(rgb, ep.frames[t])
            pose = ep.columns["camera.pose"][t].astype(np.float64)
            K = ep.columns["camera.intrinsics"][t].astype(np.float64)
            R, c = pose[:3, :3], pose[:3, 3]
            assert np.allclose(R.T @ R, np.eye(3), atol=1e-5) and np.linalg.det(R) == pytest.approx(1, abs=1e-5)
            centres = ep.columns["vehicles.position"][t].astype(np.float64)
            cam = (centres - c) @ R
            Ks = scale_intrinsics(K, ss)
            for j, (x, y, z) in enumerate(cam):
                if z < 3.0:
                    continue
                u, v = Ks[0, 0] * x / z + Ks[0, 2], Ks[1, 1] * y / z + Ks[1, 2]
                if not (2 <= u < size * ss - 2 and 2 <= v < size * ss - 2):
                    continue
                seen = int(ids[int(round(v)), int(round(u))])
                nearer = [i + 1 for i, p in enumerate(cam) if 0 < p[2] < z]
                assert seen == j + 1 or seen in nearer, (k, t, j, seen)
                checked += seen == j + 1
    assert checked >= 5


def _euler_bicycle(state, action, dt, wheelbase, steps=400):
    """An independent fine-step Euler integration of the rear-axle kinematic bicycle model."""
    x, y, yaw, v, delta = state
    a, w = action
    h = dt / steps
    for _ in range(steps):
        x, y, yaw, v, delta = (x + h * v * np.cos(yaw), y + h * v * np.sin(yaw), yaw + h * v * np.tan(delta) / wheelbase,
                               v + h * a, delta + h * w)
    return np.array([x, y, yaw, v, delta])


@pytest.mark.parametrize("scenario", ["curve_left", "lane_change_right", "slow_down"])
def test_integrating_actions_reproduces_ego_pose(scenario):
    (ep,) = generate("driving", 1, 25, seed=3, scenario=scenario, vehicles=0)
    pose, speed, steer = ep.columns["ego.pose"], ep.columns["ego.speed"], ep.columns["ego.steering"]
    actions = ep.columns["action"].astype(np.float64)
    state = np.array([*pose[0], speed[0], steer[0]], dtype=np.float64)
    dt = 1.0 / ep.fps
    for k in range(1, len(pose)):
        state = _euler_bicycle(state, actions[k - 1], dt, ep.meta["wheelbase"])
        assert np.allclose(state[:2], pose[k, :2], atol=0.01), (k, state, pose[k])
        assert state[2] == pytest.approx(pose[k, 2], abs=1e-3)
        assert state[3] == pytest.approx(speed[k], abs=1e-3)
        assert state[4] == pytest.approx(steer[k], abs=1e-4)


def test_scenarios_do_what_the_task_says():
    frames, dt = 40, 0.1

    def run(scenario):
        rng = np.random.default_rng(episode_rng_seed(9, 0))
        scene = driving.make_scene(rng, frames, 32, scenario=scenario, cfg=driving.DrivingConfig(vehicles=0))
        sd = [scene.road.locate(x, y, s) for (x, y, *_), s in zip(scene.states, np.cumsum(scene.states[:, 3]) * dt)]
        return scene, np.array(sd)

    scene, sd = run("lane_change_left")
    assert sd[-1, 1] - sd[0, 1] == pytest.approx(scene.cfg.lane_width, abs=0.4)
    scene, sd = run("lane_change_right")
    assert sd[-1, 1] - sd[0, 1] == pytest.approx(-scene.cfg.lane_width, abs=0.4)
    scene, sd = run("lane_keep")
    assert np.ptp(sd[:, 1]) < 0.3
    scene, _ = run("speed_up")
    assert scene.states[-1, 3] > scene.states[0, 3] + 5
    scene, _ = run("slow_down")
    assert scene.states[-1, 3] < scene.states[0, 3] - 5
    scene, _ = run("curve_left")
    assert scene.states[-1, 2] - scene.states[0, 2] > 0.3
    scene, _ = run("curve_right")
    assert scene.states[-1, 2] - scene.states[0, 2] < -0.3
    # Smooth controls: bounded steering rate and acceleration everywhere.
    assert np.abs(scene.actions[:, 1]).max() <= scene.cfg.max_steer_rate + 1e-9
    assert np.abs(scene.states[:, 4]).max() <= scene.cfg.max_steer + 1e-9


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="scenario"):
        list(generate("driving", 1, 2, scenario="fly"))
    with pytest.raises(ValueError, match="unknown options"):
        list(generate("driving", 1, 2, colour="red"))


def test_rasterizer_puts_a_box_where_the_pinhole_model_says_and_clips_at_the_near_plane():
    from worldsmith.sources._render import Quads, box_quads, pinhole_intrinsics, render

    K = pinhole_intrinsics(64, 64, 90.0)  # fx = 32, cx = cy = 31.5
    pose = np.eye(4)  # the world frame is the camera frame: x right, y down, z forward
    backdrop = np.zeros((64, 64, 3), np.uint8)
    # A 2 m cube centred 10 m ahead: its front face (z = 9) spans x, y in [-1, 1] -> u, v in [27.9, 35.1].
    box = box_quads([0.0, 0.0, 10.0], 0.0, [2.0, 2.0, 2.0], [200, 50, 50], 7)
    _, ids = render(box, pose, K, backdrop, ss=1, with_ids=True)
    rows, cols = np.nonzero(ids == 7)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (28, 35, 28, 35)
    # A floor 1 m below the camera reaching from behind it (z = -5) to z = 20: the part behind the
    # camera is clipped away and the rest covers the image from its far edge (v = 31.5 + 32 / 20) down.
    floor = np.array([[[-60, 1, -5], [60, 1, -5], [60, 1, 20], [-60, 1, 20]]], float)
    quads = Quads(floor, np.array([[90.0, 90, 90]]), np.array([[0.0, -1, 0]]), np.array([0]), np.array([3]),
                  np.array([0]), floor.mean(axis=1))
    _, ids = render(quads, pose, K, backdrop, ss=1, with_ids=True)
    column = ids[:, 32]
    assert (column[34:] == 3).all() and (column[:33] == 0).all()
    assert (ids[63] == 3).all()  # the nearest row spans the whole width


def test_traffic_keeps_clear_of_the_ego_car_and_the_ego_car_stays_on_its_carriageway():
    for seed in range(12):
        rng = np.random.default_rng(seed)
        scene = driving.make_scene(rng, 40, 32)
        hint = 0.0
        for k in range(scene.frames):
            x, y = scene.states[k, :2]
            centres, _ = scene.vehicle_states(k)
            assert np.linalg.norm(centres[:, :2] - (x, y), axis=1).min() > 3.0, (seed, k)
            hint, d = scene.road.locate(x, y, hint)
            assert -scene.lanes * scene.cfg.lane_width < d < 0.0, (seed, k, d)
