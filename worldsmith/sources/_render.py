"""A small painter's-algorithm rasterizer: flat-shaded 3D quads seen through a pinhole camera.

Conventions (OpenCV): the camera looks down +z, x points right and y down in the image; the pose is
world-from-camera (4x4), so a world point p maps to camera coordinates R^T (p - t). Intrinsics are
in pixels with pixel centres at integer coordinates: the image centre is ((W-1)/2, (H-1)/2), which
is exactly how `cv2.fillConvexPoly` reads vertex coordinates.

Visibility is painter's algorithm, which is enough for scenes of separate convex boxes standing on a
flat ground: ground quads first (in layer order), then objects far to near, each object's faces in
the order it listed them, with back faces culled. Polygons that cross the near plane (or reach far
outside the image, where cv2's fixed-point coordinates would overflow) are clipped in camera space
(Sutherland-Hodgman, one plane at a time). Anti-aliasing is supersampling: render `ss` times larger
and area-average down.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NEAR = 0.3  # metres; keeps projected coordinates bounded
SHIFT = 4  # sub-pixel bits for cv2.fillConvexPoly
GUARD = 4.0  # clip against a frustum this many half-image-widths wide
TINY = 0.8  # quads smaller than this (supersampled pixels) in both directions are not drawn


def pinhole_intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """3x3 K with square pixels, horizontal field of view `hfov_deg`, centre at the middle pixel."""
    fx = (width / 2.0) / np.tan(np.radians(hfov_deg) / 2.0)
    return np.array([[fx, 0.0, (width - 1) / 2.0], [0.0, fx, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, ss: int) -> np.ndarray:
    """K for an image `ss` times larger whose ss x ss pixel blocks average into the original pixels."""
    Ks = K.astype(np.float64).copy()
    Ks[0, 0] *= ss
    Ks[1, 1] *= ss
    Ks[0, 2] = ss * K[0, 2] + (ss - 1) / 2.0
    Ks[1, 2] = ss * K[1, 2] + (ss - 1) / 2.0
    return Ks


def project(points_world: np.ndarray, cam_pose: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 3) -> pixel coordinates (..., 2) and depth z (...) in the camera."""
    R, t = cam_pose[:3, :3], cam_pose[:3, 3]
    pc = (np.asarray(points_world, dtype=np.float64) - t) @ R
    z = pc[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * pc[..., 0] / z + K[0, 2]
        v = K[1, 1] * pc[..., 1] / z + K[1, 2]
    return np.stack([u, v], axis=-1), z


@dataclass
class Quads:
    """A batch of planar convex quads.

    verts (N, 4, 3) world metres; color (N, 3) RGB 0..255 (already shaded); normal (N, 3) outward
    unit normal used for back-face culling; layer (N,) int: 0, 1, ... ground layers drawn in that
    order, OBJECT_LAYER for objects sorted by distance; group (N,) int object id (drawn into the id
    image, 0 for ground); order (N,) int draw order within an object; center (N, 3) the object's
    centre that orders objects far to near.
    """

    verts: np.ndarray
    color: np.ndarray
    normal: np.ndarray
    layer: np.ndarray
    group: np.ndarray
    order: np.ndarray
    center: np.ndarray

    def __len__(self) -> int:
        return len(self.verts)

    def select(self, index) -> "Quads":
        return Quads(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list["Quads"]) -> "Quads":
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty_quads()
        return Quads(*(np.concatenate([getattr(p, f) for p in parts]) for f in Quads.__dataclass_fields__))


OBJECT_LAYER = 100


def empty_quads() -> Quads:
    z = np.zeros
    return Quads(z((0, 4, 3)), z((0, 3)), z((0, 3)), z(0, int), z(0, int), z(0, int), z((0, 3)))


def ground_quads(verts: np.ndarray, color, layer: int) -> Quads:
    n = len(verts)
    color = np.broadcast_to(np.asarray(color, dtype=np.float64), (n, 3)).copy()
    normal = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (n, 3)).copy()
    return Quads(verts.astype(np.float64), color, normal, np.full(n, layer), np.zeros(n, int), np.zeros(n, int),
                 verts.mean(axis=1))


# Unit box corners and its six faces (corner indices ordered around each face) with outward normals.
_CORNERS = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
_FACES = np.array([[4, 5, 7, 6], [0, 2, 3, 1], [2, 6, 7, 3], [0, 1, 5, 4], [1, 3, 7, 5], [0, 4, 6, 2]])
_FACE_NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
SUN = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])


def shade(color: np.ndarray, normal: np.ndarray, ambient: float = 0.6) -> np.ndarray:
    """Lambert shading from a fixed sun so the faces of a box read as 3D."""
    lambert = np.clip(normal @ SUN, 0.0, 1.0)
    return color * (ambient + (1.0 - ambient) * lambert)[..., None]


def box_quads(centers, yaws, sizes, colors, groups, order=0, center=None, taper=None) -> Quads:
    """Boxes (M,) -> 6M quads. sizes (M, 3) = (length along yaw, width, height); centers at box middle.

    `taper` (M,) scales the top face (1 = box, < 1 = truncated pyramid, e.g. a tree crown); the side
    normals are tilted to match. `center` (M, 3) is the owning object's centre for depth sorting.
    """
    centers, sizes = np.atleast_2d(centers).astype(np.float64), np.atleast_2d(sizes).astype(np.float64)
    m = len(centers)
    yaws = np.broadcast_to(np.asarray(yaws, dtype=np.float64), (m,))
    corners = _CORNERS[None] * sizes[:, None, :]  # (M, 8, 3)
    if taper is not None:
        top = _CORNERS[:, 2] > 0
        corners[:, top, :2] *= np.broadcast_to(np.asarray(taper, dtype=np.float64), (m,))[:, None, None]
    c, s = np.cos(yaws), np.sin(yaws)
    rot = np.zeros((m, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    world = np.einsum("mij,mkj->mki", rot, corners) + centers[:, None, :]
    verts = world[:, _FACES]  # (M, 6, 4, 3)
    # Normals from the geometry (correct for tapered boxes too): cross of the face diagonals.
    d1 = verts[:, :, 2] - verts[:, :, 0]
    d2 = verts[:, :, 3] - verts[:, :, 1]
    normal = np.cross(d1, d2)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + 1e-12
    ref = np.einsum("mij,fj->mfi", rot, _FACE_NORMALS)
    normal *= np.sign(np.sum(normal * ref, axis=-1, keepdims=True) + 1e-12)
    colors = np.broadcast_to(np.asarray(colors, dtype=np.float64).reshape(-1, 3), (m, 3))
    color = shade(np.repeat(colors[:, None, :], 6, axis=1), normal)
    groups = np.broadcast_to(np.asarray(groups), (m,))
    center = centers if center is None else np.atleast_2d(center).astype(np.float64)
    return Quads(
        verts.reshape(-1, 4, 3),
        color.reshape(-1, 3),
        normal.reshape(-1, 3),
        np.full(6 * m, OBJECT_LAYER),
        np.repeat(groups, 6).astype(int),
        np.full(6 * m, order, dtype=int),
        np.repeat(center, 6, axis=0),
    )


def _clip_polygon(poly: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: keep the part of a convex polygon (K, 3) where n . p + d >= 0 for every plane."""
    for plane in planes:
        n, d = plane[:3], plane[3]
        dist = poly @ n + d
        if (dist >= 0).all():
            continue
        if (dist < 0).all():
            return poly[:0]
        out = []
        k = len(poly)
        for i in range(k):
            a, b, da, db = poly[i], poly[(i + 1) % k], dist[i], dist[(i + 1) % k]
            if da >= 0:
                out.append(a)
            if (da >= 0) != (db >= 0):
                out.append(a + (b - a) * (da / (da - db)))
        poly = np.array(out)
        if len(poly) < 3:
            return poly[:0]
    return poly


def background(height: int, width: int, K: np.ndarray, pitch: float, sky_top, sky_horizon, ground_near,
               ground_far) -> np.ndarray:
    """Sky and ground gradients split at the horizon of a camera pitched down by `pitch` (no roll)."""
    horizon = K[1, 2] - K[1, 1] * np.tan(pitch)  # image row of directions parallel to the ground
    rows = np.arange(height, dtype=np.float64)
    img = np.empty((height, width, 3), dtype=np.float64)
    sky_t = np.clip((horizon - rows) / max(horizon, 1.0), 0, 1)[:, None] if horizon > 0 else np.ones((height, 1))
    ground_t = np.clip((rows - horizon) / max(height - horizon, 1.0), 0, 1)[:, None] ** 0.5
    sky = np.asarray(sky_horizon) * (1 - sky_t) + np.asarray(sky_top) * sky_t
    ground = np.asarray(ground_far) * (1 - ground_t) + np.asarray(ground_near) * ground_t
    img[:] = np.where((rows < horizon)[:, None], sky, ground)[:, None, :]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render(quads: Quads, cam_pose: np.ndarray, K: np.ndarray, backdrop: np.ndarray, ss: int = 1,
           far: float = 200.0, haze=(200, 210, 220), fog_distance: float = 140.0,
           with_ids: bool = False):
    """Draw `quads` over `backdrop` (H, W, 3) seen from `cam_pose` with intrinsics K (for H x W).

    Returns the (H, W, 3) uint8 image, and with `with_ids` also the (H*ss, W*ss) uint16 image of
    object ids (0 = ground or sky) at the supersampled resolution.
    """
    H, W = backdrop.shape[:2]
    Hs, Ws = H * ss, W * ss
    Ks = scale_intrinsics(K, ss)
    img = cv2.resize(backdrop, (Ws, Hs), interpolation=cv2.INTER_NEAREST) if ss > 1 else backdrop.copy()
    ids = np.zeros((Hs, Ws), dtype=np.uint16) if with_ids else None
    if len(quads) == 0:
        return (img if ss == 1 else cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)), ids

    R, t = cam_pose[:3, :3], cam_pose[:3, 3]
    fx, fy, cx, cy = Ks[0, 0], Ks[1, 1], Ks[0, 2], Ks[1, 2]
    # Cheap culls first: too far (by the owning object's centre; objects are < 30 m across) and back
    # faces (the outward normal points away from the camera; any vertex lies in the face's plane).
    dist = np.sqrt(((quads.center - t) ** 2).sum(axis=1))
    facing = np.einsum("ni,ni->n", quads.normal, t - quads.verts[:, 0]) > 0
    idx = np.nonzero(facing & (dist < far + 30.0))[0]
    pc = (quads.verts[idx] - t) @ R  # (n, 4, 3) camera coordinates
    x, y, z = pc[..., 0], pc[..., 1], pc[..., 2]
    # Frustum: a quad is invisible when all four corners lie outside one of its planes.
    tl, tr = (cx + 0.5) / fx, (Ws - 0.5 - cx) / fx
    tt, tb = (cy + 0.5) / fy, (Hs - 0.5 - cy) / fy
    outside = np.stack([x - tr * z, -x - tl * z, y - tb * z, -y - tt * z, NEAR - z, z - far]).min(axis=2) > 0
    keep = ~outside.any(axis=0)
    idx, pc, dist = idx[keep], pc[keep], dist[idx][keep]
    if len(idx) == 0:
        return (img if ss == 1 else cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)), ids

    # Painter's order: ground layers as given, then objects far to near, then each object's own order.
    layer = quads.layer[idx]
    order = np.lexsort((quads.order[idx], np.where(layer >= OBJECT_LAYER, -dist, 0.0), layer))
    idx, pc, dist = idx[order], pc[order], dist[order]

    pcs = pc
    zs = pcs[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = fx * pcs[..., 0] / zs + cx
        v = fy * pcs[..., 1] / zs + cy
    limit_u, limit_v = GUARD * Ws, GUARD * Hs
    safe = (zs > NEAR).all(1) & (np.abs(u - cx) < limit_u).all(1) & (np.abs(v - cy) < limit_v).all(1)
    # Sub-pixel quads (far scenery) would colour at most one supersample: skip them, they are a third
    # of all quads in a typical frame and cost a draw call each.
    with np.errstate(invalid="ignore"):
        tiny = safe & ((u.max(1) - u.min(1)) < TINY) & ((v.max(1) - v.min(1)) < TINY)
    if tiny.any():
        idx, pcs, u, v, safe, dist = idx[~tiny], pcs[~tiny], u[~tiny], v[~tiny], safe[~tiny], dist[~tiny]
    # Aerial perspective: blend towards the haze colour with the distance of the owning object.
    fog = (0.75 * (1.0 - np.exp(-dist / fog_distance)))[:, None]
    colors = quads.color[idx] * (1 - fog) + np.asarray(haze, dtype=np.float64) * fog
    colors = (colors + 0.5).clip(0, 255).astype(np.int64).tolist()

    scale = float(1 << SHIFT)
    with np.errstate(invalid="ignore"):
        pts_all = np.round(np.stack([u, v], axis=-1) * scale).astype(np.int32) if safe.any() else None
    gu, gv = limit_u / fx, limit_v / fy
    planes = np.array([[0, 0, 1, -NEAR], [-1, 0, gu, 0], [1, 0, gu, 0], [0, -1, gv, 0], [0, 1, gv, 0]], float)
    groups = quads.group[idx].tolist()
    safe_list = safe.tolist()
    for j in range(len(idx)):
        if safe_list[j]:
            pts = pts_all[j]
        else:
            poly = _clip_polygon(pcs[j], planes)
            if len(poly) < 3:
                continue
            pu = fx * poly[:, 0] / poly[:, 2] + cx
            pv = fy * poly[:, 1] / poly[:, 2] + cy
            pts = np.round(np.stack([pu, pv], axis=-1) * scale).astype(np.int32)
        cv2.fillConvexPoly(img, pts, colors[j], lineType=cv2.LINE_8, shift=SHIFT)
        if ids is not None:
            cv2.fillConvexPoly(ids, pts, int(groups[j]), lineType=cv2.LINE_8, shift=SHIFT)
    out = img if ss == 1 else cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    return out, ids
