"""Shared pybullet plumbing for the simulated sources: clients, primitives, textures and the camera model.

Camera convention (used for every `camera.pose` / `camera.intrinsics` column these sources write):
    camera.pose        4x4 world-from-camera, OpenCV axes: x right, y down, z forward (the viewing direction).
                       A world point X maps to camera coordinates Xc = R^T (X - t), with pose = [[R, t], [0, 1]].
    camera.intrinsics  3x3 pinhole K in pixels of the rendered image, square pixels, principal point at the
                       image centre. Pixel coordinates put the centre of the top-left pixel at (0, 0), so a
                       point projects to u = fx * x/z + cx, v = fy * y/z + cy with cx = (W-1)/2, cy = (H-1)/2,
                       and `frames[t, round(v), round(u)]` is the pixel it lands on.
pybullet renders with OpenGL matrices (camera x right, y up, z backward; column-major lists); `Camera`
derives both of them from the one OpenCV pose and K so the two can never disagree.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

# Distinct, saturated colours that read well at 64x64; names are used in task strings.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.75, 0.15),
    "blue": (0.10, 0.25, 0.95),
    "yellow": (0.95, 0.85, 0.10),
    "purple": (0.60, 0.15, 0.80),
    "orange": (1.00, 0.50, 0.05),
    "cyan": (0.05, 0.80, 0.85),
    "white": (0.95, 0.95, 0.95),
}

# OpenCV camera axes -> OpenGL camera axes (flip y and z).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@contextmanager
def bullet_client() -> Iterator[int]:
    """A fresh headless pybullet physics server; a fresh one per episode keeps episodes independent
    and bit-reproducible (no state, cache or id counter survives from the previous episode)."""
    import pybullet as p
    import pybullet_data

    client = p.connect(p.DIRECT)
    try:
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=client)
        p.setGravity(0, 0, -9.81, physicsClientId=client)
        yield client
    finally:
        p.disconnect(physicsClientId=client)


# ----------------------------------------------------------------------------------------------- camera


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World-from-camera 4x4 (OpenCV axes) for a camera at `eye` looking at `target`."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`: pick any perpendicular right axis
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def intrinsics(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """Pinhole K for a vertical field of view, square pixels, centred principal point (see module doc)."""
    fy = (height / 2.0) / np.tan(np.radians(fov_y_deg) / 2.0)
    return np.array([[fy, 0.0, (width - 1) / 2.0], [0.0, fy, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class Camera:
    """A pinhole camera: pose (world-from-camera, OpenCV axes), image size and vertical field of view."""

    pose: np.ndarray
    width: int = 64
    height: int = 64
    fov_y_deg: float = 50.0
    near: float = 0.02
    far: float = 20.0

    @property
    def K(self) -> np.ndarray:
        return intrinsics(self.width, self.height, self.fov_y_deg)

    def view_matrix(self) -> list[float]:
        """OpenGL eye-from-world, column-major, as pybullet wants it."""
        view = _CV_TO_GL @ np.linalg.inv(self.pose)
        return view.T.reshape(-1).tolist()

    def projection_matrix(self) -> list[float]:
        """OpenGL perspective projection for the same vertical field of view and aspect, column-major.

        The TinyRenderer rasterises with its image centre at pixel (W/2, H/2 - 1) in our pixel coordinates
        (measured: rendered sphere centroids sit +0.5 px right and -0.5 px up of the ideal projection);
        the off-centre terms 1/W and 1/H shift the image by half a pixel so it matches K exactly.
        """
        f = 1.0 / np.tan(np.radians(self.fov_y_deg) / 2.0)
        n, far = self.near, self.far
        proj = np.array(
            [
                [f * self.height / self.width, 0.0, 1.0 / self.width, 0.0],
                [0.0, f, 1.0 / self.height, 0.0],
                [0.0, 0.0, (far + n) / (n - far), 2.0 * far * n / (n - far)],
                [0.0, 0.0, -1.0, 0.0],
            ]
        )
        return proj.T.reshape(-1).tolist()

    def project(self, points) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> pixel coordinates (..., 2) and depth along the optical axis (...)."""
        return project(points, self.K, self.pose)


def project(points, K: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (..., 3) with intrinsics K and world-from-camera `pose` (OpenCV axes).

    Returns (pixels (..., 2) as (u, v) = (column, row), depth (...)); points behind the camera get depth <= 0.
    """
    pts = np.asarray(points, dtype=np.float64)
    rot, t = pose[:3, :3], pose[:3, 3]
    cam = (pts - t) @ rot  # R^T (X - t), written for row vectors
    z = cam[..., 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    u = K[0, 0] * cam[..., 0] / safe + K[0, 2]
    v = K[1, 1] * cam[..., 1] / safe + K[1, 2]
    return np.stack([u, v], axis=-1), z


def render(client: int, camera: Camera, segmentation: bool = False):
    """Render RGB (H, W, 3) uint8 with the TinyRenderer, and the body-id image (H, W) int32 if asked (-1 = none)."""
    import pybullet as p

    flags = 0 if segmentation else p.ER_NO_SEGMENTATION_MASK
    _, _, rgba, _, seg = p.getCameraImage(
        camera.width,
        camera.height,
        viewMatrix=camera.view_matrix(),
        projectionMatrix=camera.projection_matrix(),
        renderer=p.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=client,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(camera.height, camera.width, 4)[..., :3].copy()
    if not segmentation:
        return rgb
    return rgb, np.asarray(seg, dtype=np.int32).reshape(camera.height, camera.width)


# ------------------------------------------------------------------------------------------- primitives


def add_body(
    client: int,
    shape: str,
    size: float | tuple,
    position,
    rgba=(1, 1, 1, 1),
    mass: float = 0.0,
    orientation=(0, 0, 0, 1),
    texture: int | None = None,
) -> int:
    """Create a box / sphere / cylinder body. size: box half extents (3,), sphere radius, cylinder (radius, height)."""
    import pybullet as p

    if shape == "box":
        half = list(np.broadcast_to(np.asarray(size, dtype=float), (3,)))
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=client)
    elif shape == "sphere":
        col = p.createCollisionShape(p.GEOM_SPHERE, radius=float(size), physicsClientId=client)
        vis = p.createVisualShape(p.GEOM_SPHERE, radius=float(size), rgbaColor=rgba, physicsClientId=client)
    elif shape == "cylinder":
        radius, height = size
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=height, physicsClientId=client)
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=rgba, physicsClientId=client)
    else:
        raise ValueError(f"unknown primitive shape {shape!r}")
    body = p.createMultiBody(
        baseMass=mass,
        baseCollisionShapeIndex=col,
        baseVisualShapeIndex=vis,
        basePosition=list(map(float, position)),
        baseOrientation=list(map(float, orientation)),
        physicsClientId=client,
    )
    if texture is not None:
        p.changeVisualShape(body, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    return body


def add_ground(client: int, texture: int | None, half: float = 4.0, rgba=(0.8, 0.8, 0.8, 1.0), z: float = 0.0) -> int:
    """A static ground square of side 2 * half with its top at height z, the texture stretched exactly once over it.

    The visual is an explicit quad with UVs 0..1 (a box primitive maps only a sub-rectangle of the texture to its
    top face, and plane.urdf tiles it every few centimetres, which aliases into shimmer at 64x64)."""
    import pybullet as p

    h = float(half)
    vis = p.createVisualShape(
        p.GEOM_MESH,
        vertices=[[-h, -h, 0.0], [h, -h, 0.0], [h, h, 0.0], [-h, h, 0.0]],
        indices=[0, 1, 2, 0, 2, 3],
        uvs=[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
        normals=[[0.0, 0.0, 1.0]] * 4,
        rgbaColor=rgba,
        physicsClientId=client,
    )
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[h, h, 0.05], collisionFramePosition=[0, 0, -0.05], physicsClientId=client)
    body = p.createMultiBody(0.0, col, vis, [0.0, 0.0, float(z)], physicsClientId=client)
    if texture is not None:
        p.changeVisualShape(body, -1, textureUniqueId=texture, rgbaColor=[1, 1, 1, 1], physicsClientId=client)
    return body


def ground_texture(rng: np.random.Generator, squares: int = 24, size: int = 192) -> np.ndarray:
    """A muted two-tone checkerboard with a little per-square brightness jitter: parallax and motion cues
    that do not compete with the coloured objects."""
    a, b = rng.uniform(0.35, 0.5), rng.uniform(0.6, 0.8)
    tint = rng.uniform(0.85, 1.15, 3)
    cell = np.arange(size) * squares // size
    yy, xx = np.meshgrid(cell, cell, indexing="ij")
    jitter = rng.uniform(0.92, 1.08, (squares, squares))[yy, xx]
    img = np.where((xx + yy) % 2 == 0, a, b)[..., None] * jitter[..., None] * tint
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_texture(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A procedural RGB texture (size, size, 3) uint8: checkerboard, stripes or smooth blobs in random colours."""
    kind = rng.integers(3)
    c1, c2 = rng.uniform(0.1, 1.0, size=(2, 3))
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == 0:  # checkerboard
        n = rng.integers(2, 9)
        mix = ((np.floor(xx * n) + np.floor(yy * n)) % 2)[..., None]
    elif kind == 1:  # stripes at a random angle
        angle, n = rng.uniform(0, np.pi), rng.integers(3, 10)
        mix = (np.sin(2 * np.pi * n * (np.cos(angle) * xx + np.sin(angle) * yy)) > 0)[..., None].astype(float)
    else:  # smooth blobs: a few random sinusoids
        field = np.zeros_like(xx)
        for _ in range(4):
            fx, fy, ph = rng.integers(1, 5), rng.integers(1, 5), rng.uniform(0, 2 * np.pi)
            field += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
        mix = (0.5 + 0.5 * np.tanh(field))[..., None]
    img = c1 * mix + c2 * (1 - mix)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def load_texture(client: int, image: np.ndarray, folder: str, name: str) -> int:
    """Write `image` as a PNG into `folder` and load it as a pybullet texture id."""
    import pybullet as p
    from PIL import Image

    path = os.path.join(folder, f"{name}.png")
    Image.fromarray(image).save(path)
    return p.loadTexture(path, physicsClientId=client)


def smoothstep(x):
    """C1 ease-in-out on [0, 1]: paths start and end at rest instead of jerking."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)
