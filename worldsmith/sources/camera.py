"""`camera` source: a static 3D scene of textured and coloured objects seen by a moving camera.

Each episode builds a random scene (a textured ground plane and 5-9 boxes, spheres and cylinders) and moves the
camera along one smooth, eased path of one kind: orbit (around the scene centre), dolly (toward or away from it),
pan (turn left/right in place) or tilt (turn up/down in place). The task string names the motion
("camera orbits left around the scene"). Per frame:
    camera.pose        (T, 4, 4) float32 world-from-camera, OpenCV axes (x right, y down, z forward), metres
    camera.intrinsics  (T, 3, 3) float32 pinhole K in pixels of the rendered image (see `_bullet`)
    camera.motion      (T,) int64 index into MOTIONS
The scene is static, so every pixel change between frames is explained by the camera pose alone.
"""

from __future__ import annotations

import tempfile
from typing import Iterator

import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.sources import episode_rng_seed
from worldsmith.sources._bullet import COLORS, Camera, add_body, add_ground, bullet_client, ground_texture, load_texture, look_at, make_texture, render, smoothstep

NAME = "camera"
DESCRIPTION = "static textured 3D scene, camera on smooth orbit / dolly / pan / tilt paths; GT camera pose + K"
FPS = 10.0
MOTIONS = ("orbit", "dolly", "pan", "tilt")
FOV_Y_DEG = 55.0


def generate(episodes: int, frames: int, size: int = 64, seed: int = 0, motion: str | None = None, **options) -> Iterator[Episode]:
    """Yield `episodes` episodes of `frames` frames at size x size. `motion` fixes the path kind (default: random)."""
    if options:
        raise ValueError(f"camera source: unknown options {sorted(options)}")
    if motion is not None and motion not in MOTIONS:
        raise ValueError(f"camera source: unknown motion {motion!r}; choose one of: {', '.join(MOTIONS)}")
    for k in range(episodes):
        ep_seed = episode_rng_seed(seed, k)
        yield _episode(np.random.default_rng(ep_seed), frames, size, motion, meta={"source": NAME, "seed": seed, "episode": k})


def _episode(rng: np.random.Generator, frames: int, size: int, motion: str | None, meta: dict) -> Episode:
    motion = motion or MOTIONS[rng.integers(len(MOTIONS))]
    poses, task = camera_path(rng, motion, frames)
    K = Camera(poses[0], size, size, FOV_Y_DEG).K
    images = np.empty((frames, size, size, 3), dtype=np.uint8)
    with bullet_client() as client, tempfile.TemporaryDirectory(prefix="worldsmith-tex-") as tex_dir:
        n_objects = build_scene(client, rng, tex_dir)
        for t in range(frames):
            images[t] = render(client, Camera(poses[t], size, size, FOV_Y_DEG))
    columns = {
        "camera.pose": poses.astype(np.float32),
        "camera.intrinsics": np.repeat(K[None].astype(np.float32), frames, axis=0),
        "camera.motion": np.full(frames, MOTIONS.index(motion), dtype=np.int64),
    }
    meta = dict(meta, motion=motion, objects=n_objects)
    return Episode(frames=images, columns=columns, task=task, fps=FPS, meta=meta)


def build_scene(client: int, rng: np.random.Generator, tex_dir: str) -> int:
    """A textured ground plane and 5-9 non-overlapping primitives within ~1.3 m of the origin; returns the count."""
    import pybullet as p

    add_ground(client, load_texture(client, ground_texture(rng, squares=24), tex_dir, "ground"), half=5.0)
    color_names = list(COLORS)
    placed: list[tuple[float, float, float]] = []  # (x, y, footprint radius)
    n = int(rng.integers(5, 10))
    for i in range(n):
        shape = ("box", "sphere", "cylinder")[rng.integers(3)]
        if shape == "box":
            size = rng.uniform(0.08, 0.3, size=3)
            radius, height = float(np.hypot(size[0], size[1])), float(size[2])
        elif shape == "sphere":
            size = float(rng.uniform(0.08, 0.25))
            radius, height = size, size
        else:
            size = (float(rng.uniform(0.06, 0.2)), float(rng.uniform(0.15, 0.7)))
            radius, height = size[0], size[1] / 2
        for _ in range(50):  # rejection-sample a free spot on the ground
            x, y = rng.uniform(-1.3, 1.3, size=2)
            if all(np.hypot(x - px, y - py) > radius + pr + 0.05 for px, py, pr in placed):
                break
        placed.append((x, y, radius))
        yaw = rng.uniform(0, np.pi)
        orientation = p.getQuaternionFromEuler([0, 0, yaw])
        textured = rng.random() < 0.5
        rgba = (*COLORS[color_names[rng.integers(len(color_names))]], 1.0)
        texture = load_texture(client, make_texture(rng, 64), tex_dir, f"obj{i}") if textured else None
        add_body(client, shape, size, (x, y, height), rgba, mass=0.0, orientation=orientation, texture=texture)
    return n


def camera_path(rng: np.random.Generator, motion: str, frames: int) -> tuple[np.ndarray, str]:
    """Poses (T, 4, 4) for one eased path of kind `motion`, and the task string that names it."""
    s = smoothstep(np.linspace(0.0, 1.0, frames)) if frames > 1 else np.zeros(1)
    centre = np.array([*rng.uniform(-0.3, 0.3, size=2), rng.uniform(0.0, 0.3)])
    azimuth0 = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(2.2, 3.4)
    height = rng.uniform(0.8, 2.2)
    sign = rng.choice([-1.0, 1.0])
    # A slow hand-held wobble of a few centimetres so paths are not perfectly synthetic.
    t = np.linspace(0, 1, frames)
    wobble = np.stack([0.02 * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3)], -1)

    def eye_at(az, dist, h):
        return centre + np.array([dist * np.cos(az), dist * np.sin(az), h])

    poses = np.empty((frames, 4, 4))
    if motion == "orbit":
        # Increasing azimuth moves the camera along its own +x (right) axis, so sign +1 orbits right.
        sweep = sign * np.radians(rng.uniform(40, 90))
        for i in range(frames):
            poses[i] = look_at(eye_at(azimuth0 + sweep * s[i], distance, height) + wobble[i], centre)
        task = f"camera orbits {'right' if sign > 0 else 'left'} around the scene"
    elif motion == "dolly":
        ratio = rng.uniform(0.5, 0.7)
        start, end = (1.0, ratio) if sign > 0 else (ratio, 1.0)
        for i in range(frames):
            f = start + (end - start) * s[i]
            poses[i] = look_at(eye_at(azimuth0, distance * f, height * f) + wobble[i], centre)
        task = f"camera dollies {'in toward' if sign > 0 else 'out away from'} the scene"
    elif motion in ("pan", "tilt"):
        eye = eye_at(azimuth0, distance, height)
        to_centre = centre - eye
        yaw0 = np.arctan2(to_centre[1], to_centre[0])
        pitch0 = np.arctan2(to_centre[2], np.hypot(to_centre[0], to_centre[1]))
        if motion == "pan":
            # Positive yaw (counter-clockwise seen from above) turns the view to the left.
            yaw = yaw0 + sign * np.radians(rng.uniform(20, 45)) * s
            pitch = np.full(frames, pitch0)
            task = f"camera pans {'left' if sign > 0 else 'right'}"
        else:
            pitch = pitch0 + sign * np.radians(rng.uniform(12, 25)) * s
            yaw = np.full(frames, yaw0)
            task = f"camera tilts {'up' if sign > 0 else 'down'}"
        for i in range(frames):
            forward = np.array([np.cos(pitch[i]) * np.cos(yaw[i]), np.cos(pitch[i]) * np.sin(yaw[i]), np.sin(pitch[i])])
            poses[i] = look_at(eye + wobble[i], eye + wobble[i] + forward)
    else:
        raise ValueError(f"unknown camera motion {motion!r}")
    return poses, task
