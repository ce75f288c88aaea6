"""The `robot` source: kuka arm, scripted noisy reach/push/pick, actions aligned with the motion they cause."""

import numpy as np
import pytest

from worldsmith.sources import generate, robot


@pytest.fixture(scope="module")
def episodes_by_task():
    """One 17-frame episode per task (the tiny preset's clip length), shared by the tests below."""
    return {task: next(robot.generate(1, 17, size=48, seed=3 + i, task=task)) for i, task in enumerate(robot.TASKS)}


def test_shapes_and_dtypes(check_episode_layout):
    (ep,) = generate("robot", episodes=1, frames=5, size=64, seed=0)
    T = 5
    expected = {
        "action": ((T, 7), np.float32),
        "observation.state": ((T, 8), np.float32),
        "ee.pose": ((T, 7), np.float32),
        "object.pose": ((T, robot.MAX_OBJECTS, 7), np.float32),
        "object.count": ((T,), np.int64),
        "object.target": ((T,), np.int64),
        "camera.pose": ((T, 4, 4), np.float32),
        "camera.intrinsics": ((T, 3, 3), np.float32),
    }
    n = check_episode_layout(ep, expected, frames=T, size=64)
    assert 1 <= n <= robot.MAX_OBJECTS and 0 <= ep.columns["object.target"][0] < n
    assert not ep.columns["object.pose"][:, n:].any()
    np.testing.assert_allclose(np.linalg.norm(ep.columns["ee.pose"][:, 3:], axis=-1), 1.0, atol=1e-5)
    assert ep.fps == robot.FPS and ep.meta["task_kind"] in robot.TASKS


def test_renders_at_128():
    (ep,) = robot.generate(1, 2, size=128, seed=0)
    assert ep.frames.shape == (2, 128, 128, 3)
    assert ep.frames.std() > 10  # a scene, not a blank image


def test_deterministic_by_seed():
    a = list(robot.generate(1, 6, size=32, seed=5))
    b = list(robot.generate(1, 6, size=32, seed=5))
    c = list(robot.generate(1, 6, size=32, seed=6))
    assert a[0].frames.tobytes() == b[0].frames.tobytes() and a[0].task == b[0].task
    for name in a[0].columns:
        assert a[0].columns[name].tobytes() == b[0].columns[name].tobytes(), name
    assert a[0].frames.tobytes() != c[0].frames.tobytes()
    assert a[0].columns["action"].tobytes() != c[0].columns["action"].tobytes()


@pytest.mark.parametrize("task", robot.TASKS)
def test_integrated_actions_track_the_end_effector(episodes_by_task, task):
    """action[k] is applied between frame k and k+1: ee[0] + sum(action[:k, :3]) follows ee[k]."""
    ep = episodes_by_task[task]
    ee, action = ep.columns["ee.pose"][:, :3].astype(np.float64), ep.columns["action"].astype(np.float64)
    integrated = ee[0] + np.concatenate([np.zeros((1, 3)), np.cumsum(action[:-1, :3], axis=0)])
    error = np.linalg.norm(integrated - ee, axis=-1)
    path = np.linalg.norm(np.diff(ee, axis=0), axis=-1).sum()
    assert path > 0.1  # the arm actually moves
    assert error.max() < 0.02 and error.mean() < 0.01, error
    # shifting the actions by one frame breaks the alignment: the test can tell k from k+1
    shifted = ee[0] + np.concatenate([np.zeros((2, 3)), np.cumsum(action[:-2, :3], axis=0)])
    assert np.linalg.norm(shifted - ee, axis=-1).mean() > error.mean()
    assert set(np.unique(action[:, 6])) <= {0.0, 1.0}
    assert np.abs(ep.frames[-1].astype(int) - ep.frames[0].astype(int)).mean() > 0.5


def test_pick_closes_the_gripper_and_lifts_the_cube(episodes_by_task):
    ep = episodes_by_task["pick"]
    target = int(ep.columns["object.target"][0])
    cube_z = ep.columns["object.pose"][:, target, 2]
    grip, opening = ep.columns["action"][:, 6], ep.columns["observation.state"][:, 7]
    assert ep.task.startswith("pick up the ") and ep.task.endswith(" cube")
    assert grip[0] == 0 and grip[-1] == 1
    assert opening[-1] < opening[0] - 0.02  # fingers closed on the cube
    assert cube_z[-1] > cube_z[0] + 0.05 and ep.meta["success"]


def test_push_moves_the_cube_the_named_way(episodes_by_task):
    ep = episodes_by_task["push"]
    target = int(ep.columns["object.target"][0])
    moved = ep.columns["object.pose"][-1, target, :3] - ep.columns["object.pose"][0, target, :3]
    side = ep.task.split()[-1]
    assert side in ("left", "right")
    # the camera looks back at the arm from +x, so its left is world -y: check that in the image too
    pose = ep.columns["camera.pose"][0]
    assert pose[1, 0] > 0.8  # camera x axis (image right) is mostly world +y
    assert moved[1] * (1 if side == "right" else -1) > 0.05 and abs(moved[2]) < 0.02


def test_reach_ends_near_the_cube(episodes_by_task):
    ep = episodes_by_task["reach"]
    target = int(ep.columns["object.target"][0])
    gap = ep.columns["ee.pose"][-1, :3] - ep.columns["object.pose"][-1, target, :3]
    assert np.linalg.norm(gap[:2]) < 0.03 and 0.03 < gap[2] < 0.15
    assert ep.task.startswith("reach the ")


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="unknown task"):
        next(robot.generate(1, 2, task="juggle"))
    with pytest.raises(ValueError, match="unknown options"):
        next(robot.generate(1, 2, arm="panda"))


def test_cubes_project_onto_their_pixels(episodes_by_task):
    """camera.pose / camera.intrinsics and object.pose agree with the image: each cube's centre lands on its colour."""
    from worldsmith.sources._bullet import COLORS, project

    checked = 0
    for ep in episodes_by_task.values():
        K, pose = ep.columns["camera.intrinsics"][0].astype(np.float64), ep.columns["camera.pose"][0].astype(np.float64)
        for i, color in enumerate(ep.meta["cubes"]):
            (u, v), depth = project(ep.columns["object.pose"][0, i, :3].astype(np.float64), K, pose)
            assert depth > 0
            pixel = ep.frames[0, int(round(v)), int(round(u))].astype(float) / 255
            expected = np.array(COLORS[color])
            # shading scales the colour; compare chromaticity
            assert np.abs(pixel / pixel.sum() - expected / expected.sum()).max() < 0.12, (color, pixel)
            checked += 1
    assert checked >= 3
