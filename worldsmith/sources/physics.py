"""`physics` source: rigid balls and cubes falling, bouncing, sliding and colliding on a ground plane.

Each episode drops, slides or throws 1..max_objects bodies, each a distinct colour, and films them from a fixed
camera. Scenarios: "fall" (dropped from 0.4-1.4 m, bouncy), "slide" (launched along the ground toward one another,
low friction), "throw" (launched in arcs toward the middle). Per frame, with N = max_objects (padded rows are 0):
    object.position     (T, N, 3) float32 centre of mass in world metres (z up)
    object.velocity     (T, N, 3) float32 linear velocity, m/s
    object.orientation  (T, N, 4) float32 quaternion (x, y, z, w)
    object.projection   (T, N, 2) float32 pixel (u, v) of the centre under camera.pose / camera.intrinsics
    object.visible      (T, N) int64 1 where at least one pixel of the object is in the image (after occlusion)
    object.count        (T,) int64 number of real objects (rows >= count are padding)
    object.mask         (T, H, W) uint8 label image from the renderer's segmentation buffer: 0 = background,
                        i + 1 = object i
    camera.pose, camera.intrinsics as in `_bullet` (fixed over the episode).
The simulation runs at 240 Hz with a fixed time step and is stepped 240 / FPS times between frames.
"""

from __future__ import annotations

import tempfile
from typing import Iterator

import numpy as np

from worldsmith.data.episode import Episode
from worldsmith.sources import episode_rng_seed
from worldsmith.sources._bullet import COLORS, Camera, add_body, add_ground, bullet_client, ground_texture, load_texture, look_at, render

NAME = "physics"
DESCRIPTION = "balls and cubes falling, bouncing, sliding, colliding; GT positions, velocities, projections, masks"
FPS = 15.0
SIM_HZ = 240
SCENARIOS = ("fall", "slide", "throw")
FOV_Y_DEG = 50.0
_NUMBERS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
_OBJECT_COLORS = [c for c in COLORS if c != "white"]


def generate(
    episodes: int, frames: int, size: int = 64, seed: int = 0, max_objects: int = 4, scenario: str | None = None, **options
) -> Iterator[Episode]:
    """Yield `episodes` episodes of `frames` frames at size x size with 1..max_objects bodies each."""
    if options:
        raise ValueError(f"physics source: unknown options {sorted(options)}")
    if not 1 <= max_objects <= len(_OBJECT_COLORS):
        raise ValueError(f"physics source: max_objects must be in 1..{len(_OBJECT_COLORS)}, got {max_objects}")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"physics source: unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    for k in range(episodes):
        rng = np.random.default_rng(episode_rng_seed(seed, k))
        yield _episode(rng, frames, size, max_objects, scenario, meta={"source": NAME, "seed": seed, "episode": k})


def _episode(rng, frames: int, size: int, max_objects: int, scenario: str | None, meta: dict) -> Episode:
    import pybullet as p

    scenario = scenario or SCENARIOS[rng.integers(len(SCENARIOS))]
    n = int(rng.integers(1, max_objects + 1))
    shapes = [("sphere", "cube")[rng.integers(2)] for _ in range(n)]
    colors = [_OBJECT_COLORS[i] for i in rng.permutation(len(_OBJECT_COLORS))[:n]]

    azimuth, distance, height = rng.uniform(0, 2 * np.pi), rng.uniform(1.7, 2.2), rng.uniform(0.8, 1.3)
    target = np.array([0.0, 0.0, 0.2])
    camera = Camera(look_at(target + [distance * np.cos(azimuth), distance * np.sin(azimuth), height], target), size, size, FOV_Y_DEG)

    cols = {
        "object.position": np.zeros((frames, max_objects, 3), np.float32),
        "object.velocity": np.zeros((frames, max_objects, 3), np.float32),
        "object.orientation": np.zeros((frames, max_objects, 4), np.float32),
        "object.projection": np.zeros((frames, max_objects, 2), np.float32),
        "object.visible": np.zeros((frames, max_objects), np.int64),
        "object.count": np.full(frames, n, np.int64),
        "object.mask": np.zeros((frames, size, size), np.uint8),
        "camera.pose": np.repeat(camera.pose[None].astype(np.float32), frames, 0),
        "camera.intrinsics": np.repeat(camera.K[None].astype(np.float32), frames, 0),
    }
    images = np.empty((frames, size, size, 3), np.uint8)

    with bullet_client() as client, tempfile.TemporaryDirectory(prefix="worldsmith-tex-") as tex_dir:
        p.setTimeStep(1.0 / SIM_HZ, physicsClientId=client)
        ground = add_ground(client, load_texture(client, ground_texture(rng, squares=20), tex_dir, "ground"))
        p.changeDynamics(ground, -1, restitution=0.9, lateralFriction=0.5, physicsClientId=client)
        bodies = _spawn(client, rng, scenario, shapes, colors)
        # Body id -> label (0 background, i+1 object i); segmentation -1 (no body) maps through the last entry.
        lut = np.zeros(max(bodies) + 2, np.uint8)
        for i, b in enumerate(bodies):
            lut[b] = i + 1
        substeps = int(round(SIM_HZ / FPS))
        for t in range(frames):
            images[t], seg = render(client, camera, segmentation=True)
            labels = lut[np.where(seg < 0, len(lut) - 1, seg & ((1 << 24) - 1))]
            cols["object.mask"][t] = labels
            for i, b in enumerate(bodies):
                pos, orn = p.getBasePositionAndOrientation(b, physicsClientId=client)
                vel, _ = p.getBaseVelocity(b, physicsClientId=client)
                cols["object.position"][t, i], cols["object.orientation"][t, i], cols["object.velocity"][t, i] = pos, orn, vel
            uv, _ = camera.project(cols["object.position"][t, :n].astype(np.float64))
            cols["object.projection"][t, :n] = uv
            present = np.bincount(labels.reshape(-1), minlength=n + 1)[1 : n + 1] > 0
            cols["object.visible"][t, :n] = present
            for _ in range(substeps):
                p.stepSimulation(physicsClientId=client)

    task = _describe(scenario, shapes, colors)
    meta = dict(meta, scenario=scenario, objects=[f"{c} {s}" for c, s in zip(colors, shapes)])
    return Episode(frames=images, columns=cols, task=task, fps=FPS, meta=meta)


def _spawn(client: int, rng, scenario: str, shapes: list[str], colors: list[str]) -> list[int]:
    """Create the bodies at non-overlapping starts with the scenario's initial velocities and materials."""
    import pybullet as p

    bodies, placed = [], []
    for shape, color in zip(shapes, colors):
        half = float(rng.uniform(0.09, 0.15))
        for _ in range(100):
            xy = rng.uniform(-0.5, 0.5, 2)
            if all(np.linalg.norm(xy - q) > 2.2 * max(half, 0.14) for q in placed):
                break
        placed.append(xy)
        if scenario == "fall":
            z = rng.uniform(0.4, 1.4)
            velocity = [*rng.normal(0, 0.3, 2), 0.0]
        elif scenario == "slide":
            z = half
            speed = rng.uniform(1.0, 2.5)
            aim = -xy + rng.normal(0, 0.15, 2)  # toward the middle, where they meet
            velocity = [*(speed * aim / (np.linalg.norm(aim) + 1e-9)), 0.0]
        else:  # throw: an arc toward the middle
            z = rng.uniform(0.2, 0.6)
            aim = -xy / (np.linalg.norm(xy) + 1e-9)
            velocity = [*(rng.uniform(0.6, 1.6) * aim), rng.uniform(1.5, 3.5)]
        orientation = p.getQuaternionFromEuler(list(rng.uniform(0, np.pi, 3)) if scenario != "slide" else [0, 0, rng.uniform(0, np.pi)])
        body = add_body(client, "sphere" if shape == "sphere" else "box", half, (*xy, z), (*COLORS[color], 1.0),
                        mass=float(rng.uniform(0.5, 2.0)), orientation=orientation)
        bouncy = scenario != "slide"
        p.changeDynamics(
            body, -1,
            restitution=float(rng.uniform(0.5, 0.95) if bouncy else rng.uniform(0.2, 0.5)),
            lateralFriction=float(rng.uniform(0.3, 0.6) if bouncy else rng.uniform(0.05, 0.2)),
            rollingFriction=0.001, spinningFriction=0.001, linearDamping=0.02, angularDamping=0.05,
            physicsClientId=client,
        )
        spin = rng.normal(0, 2.0, 3) if scenario == "throw" else np.zeros(3)
        p.resetBaseVelocity(body, list(map(float, velocity)), list(map(float, spin)), physicsClientId=client)
        bodies.append(body)
    return bodies


def _describe(scenario: str, shapes: list[str], colors: list[str]) -> str:
    """"three balls fall and bounce", "a red ball and a blue cube slide and collide", ..."""
    n = len(shapes)
    nouns = {"sphere": "ball", "cube": "cube"}
    if n <= 2:
        subject = " and ".join(f"{'an' if c[0] in 'aeiou' else 'a'} {c} {nouns[s]}" for c, s in zip(colors, shapes))
    elif len(set(shapes)) == 1:
        subject = f"{_NUMBERS[n]} {nouns[shapes[0]]}s"
    else:
        balls = shapes.count("sphere")
        cubes = n - balls
        part = lambda k, noun: f"{_NUMBERS[k]} {noun}{'s' if k > 1 else ''}"
        subject = f"{part(balls, 'ball')} and {part(cubes, 'cube')}"
    verb = {
        "fall": ("falls and bounces", "fall and bounce"),
        "slide": ("slides across the floor", "slide and collide"),
        "throw": ("is thrown and lands", "are thrown, collide and land"),
    }[scenario][0 if n == 1 else 1]
    return f"{subject} {verb}"
