"""The shared pybullet camera model (`_bullet`) and the `camera` source."""

import numpy as np
import pytest

from worldsmith.sources import camera, generate
from worldsmith.sources._bullet import Camera, add_body, bullet_client, look_at, project, render


def test_look_at_is_opencv_world_from_camera():
    pose = look_at([2.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(pose[:3, 2], [-1, 0, 0], atol=1e-12)  # z forward, toward the target
    np.testing.assert_allclose(pose[:3, 1], [0, 0, -1], atol=1e-12)  # y down
    np.testing.assert_allclose(pose[:3, 0], [0, 1, 0], atol=1e-12)  # x right = forward x up
    np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
    K = Camera(pose, 64, 48, 50.0).K
    uv, depth = project([0.0, 0.0, 1.0], K, pose)
    np.testing.assert_allclose(uv, [31.5, 23.5])  # the target lands on the image centre
    assert depth == pytest.approx(2.0)
    uv, _ = project([0.0, 0.1, 1.0], K, pose)  # looking down -x, world +y is the camera's right
    assert uv[0] > 31.5


@pytest.mark.parametrize("width,height", [(64, 64), (96, 64), (128, 128)])
def test_projection_lands_where_the_renderer_draws(width, height):
    """A small sphere's rendered centroid sits on the projection of its centre (intrinsics + extrinsics)."""
    rng = np.random.default_rng(width + height)
    with bullet_client() as client:
        import pybullet as p

        for _ in range(4):
            eye = rng.uniform(-2, 2, 3)
            eye[2] = abs(eye[2]) + 0.5
            cam = Camera(look_at(eye, rng.uniform(-0.1, 0.1, 3)), width, height, fov_y_deg=rng.uniform(40, 70))
            centre = rng.uniform(-0.3, 0.3, 3)
            ball = add_body(client, "sphere", 0.035 * np.linalg.norm(eye - centre), centre, (1, 0, 0, 1))
            rgb, seg = render(client, cam, segmentation=True)
            rows, cols = np.nonzero(seg == ball)
            assert len(rows) >= 5
            assert (rgb[rows, cols, 0] > 100).all() and (rgb[rows, cols, 1] < 50).all()
            uv, depth = cam.project(centre)
            assert depth > 0
            assert abs(cols.mean() - uv[0]) < 1.0 and abs(rows.mean() - uv[1]) < 1.0, (cols.mean(), rows.mean(), uv)
            p.removeBody(ball, physicsClientId=client)


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_and_dtypes(size):
    (ep,) = generate("camera", episodes=1, frames=4, size=size, seed=0)
    assert ep.frames.shape == (4, size, size, 3) and ep.frames.dtype == np.uint8
    assert ep.columns["camera.pose"].shape == (4, 4, 4) and ep.columns["camera.pose"].dtype == np.float32
    assert ep.columns["camera.intrinsics"].shape == (4, 3, 3) and ep.columns["camera.intrinsics"].dtype == np.float32
    assert ep.columns["camera.motion"].shape == (4,) and ep.columns["camera.motion"].dtype == np.int64
    K = ep.columns["camera.intrinsics"][0]
    assert K[0, 2] == pytest.approx((size - 1) / 2) and K[0, 0] == pytest.approx(K[1, 1])
    assert ep.fps == camera.FPS and ep.task.startswith("camera ")


def test_deterministic_by_seed():
    a = list(generate("camera", episodes=2, frames=5, size=32, seed=7))
    b = list(generate("camera", episodes=2, frames=5, size=32, seed=7))
    c = list(generate("camera", episodes=2, frames=5, size=32, seed=8))
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes() and x.task == y.task
        for name in x.columns:
            assert x.columns[name].tobytes() == y.columns[name].tobytes()
    assert a[0].frames.tobytes() != c[0].frames.tobytes()
    assert a[0].columns["camera.pose"].tobytes() != c[0].columns["camera.pose"].tobytes()


@pytest.mark.parametrize("seed", [0, 3])  # seed 0 draws left/out/right/down, seed 3 right/in/left/up
@pytest.mark.parametrize("motion", camera.MOTIONS)
def test_each_motion_moves_the_camera_as_named(motion, seed):
    (ep,) = camera.generate(1, 8, size=32, seed=seed, motion=motion)
    poses = ep.columns["camera.pose"].astype(np.float64)
    eye, forward = poses[:, :3, 3], poses[:, :3, 2]
    travel = np.linalg.norm(eye[-1] - eye[0])
    turn = np.degrees(np.arccos(np.clip(forward[0] @ forward[-1], -1, 1)))
    assert motion.split()[0][:3] in ep.task  # "orbits", "dollies", "pans", "tilts"
    assert (ep.columns["camera.motion"] == camera.MOTIONS.index(motion)).all()
    if motion in ("pan", "tilt"):
        assert travel < 0.1 and turn > 8  # rotates in place (a few cm of hand-held wobble)
        heading = np.degrees(np.arctan2(forward[:, 1], forward[:, 0]))
        pitch = np.degrees(np.arcsin(-forward[:, 2]))  # OpenCV forward is +z; positive = looking down
        if motion == "pan":
            assert abs(heading[-1] - heading[0]) > 8 and abs(pitch[-1] - pitch[0]) < 2
        else:
            assert abs(pitch[-1] - pitch[0]) > 8
    else:
        assert travel > 0.3
    # the direction word matches the geometry
    right0 = poses[0, :3, 0]
    if motion == "orbit":
        assert (eye[-1] - eye[0]) @ right0 * (1 if "right" in ep.task else -1) > 0.2
    if motion == "dolly":
        assert ((eye[-1] - eye[0]) @ forward[0] > 0) == ("in toward" in ep.task)  # moves along its view = in
    if motion == "pan":
        assert (heading[-1] > heading[0]) == ("left" in ep.task)  # counter-clockwise from above turns left
    if motion == "tilt":
        assert (forward[-1, 2] > forward[0, 2]) == ("up" in ep.task)
    assert np.abs(ep.frames[-1].astype(int) - ep.frames[0].astype(int)).mean() > 3  # the video is not static
    for pose in poses:  # every pose is a rigid transform
        np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-5)


def test_unknown_motion_and_option_are_errors():
    with pytest.raises(ValueError, match="unknown motion"):
        next(camera.generate(1, 2, motion="spin"))
    with pytest.raises(ValueError, match="unknown options"):
        next(camera.generate(1, 2, colour="red"))
