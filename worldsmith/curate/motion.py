"""Motion scores from DIS optical flow, and camera motion from a global affine fit of the flow field.

For each sampled frame pair we fit  u = a0 + a1 x + a2 y,  v = b0 + b1 x + b2 y  (x, y centred and scaled
to [-1, 1]) by least squares. The constant terms are the camera's translation (pan: a0, tilt: b0), the
divergence (a1 + b2) / 2 is zoom. Shake is the frame-to-frame jitter of the translation: a steady pan has a
large but smooth translation, a shaking camera one whose sign and size change from pair to pair.
Units are pixels per frame at the analysis width (config `split.analysis_width`).
"""

from __future__ import annotations

import cv2
import numpy as np

_GRID = 12  # the affine fit uses flow sampled on a GRID x GRID lattice: plenty for 6 parameters


def _affine_basis(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ys = np.linspace(0, h - 1, _GRID).round().astype(int)
    xs = np.linspace(0, w - 1, _GRID).round().astype(int)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    x = (gx / max(w - 1, 1)) * 2 - 1
    y = (gy / max(h - 1, 1)) * 2 - 1
    basis = np.stack([np.ones_like(x), x, y], axis=-1).reshape(-1, 3).astype(np.float64)
    return basis, gy.ravel(), gx.ravel()


def motion_scores(gray: list[np.ndarray] | np.ndarray, pairs: int = 12) -> dict:
    """Scores of a clip from its small grey frames (T, h, w) uint8; T >= 2."""
    n = len(gray)
    if n < 2:
        return {"motion": 0.0, "shake": 0.0, "pan": 0.0, "tilt": 0.0, "zoom": 0.0, "object_motion": 0.0,
                "camera_motion": "static"}
    step = max(1, (n - 1) // pairs)
    idx = list(range(0, n - 1, step))[:pairs]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    h, w = gray[0].shape
    basis, gy, gx = _affine_basis(h, w)
    mags, trans, zooms, resid = [], [], [], []
    for i in idx:
        # Flow over one frame step (not `step`), so the units stay pixels per frame.
        flow = dis.calc(gray[i], gray[i + 1], None)
        mags.append(float(np.mean(np.linalg.norm(flow, axis=-1))))
        uv = flow[gy, gx].astype(np.float64)  # (N, 2)
        coef, *_ = np.linalg.lstsq(basis, uv, rcond=None)  # (3, 2): rows = const, x, y
        trans.append(coef[0])
        # x, y span [-1, 1], so a1 = du/dx is (w/2) times the per-pixel divergence: this is pixels at the border.
        zooms.append(0.5 * (coef[1, 0] + coef[2, 1]))
        resid.append(float(np.mean(np.linalg.norm(uv - basis @ coef, axis=-1))))
    trans_a = np.array(trans)
    # Repeated frames (low-fps footage resampled up) give zero-flow pairs between moving ones; they are
    # not camera jitter, so shake is measured over the pairs that moved.
    moving = trans_a[np.array(mags) > 0.02]
    jitter = float(np.mean(np.linalg.norm(np.diff(moving, axis=0), axis=-1))) if len(moving) > 1 else 0.0
    scores = {
        "motion": float(np.mean(mags)),
        "shake": jitter,
        "pan": float(np.mean(trans_a[:, 0])),
        "tilt": float(np.mean(trans_a[:, 1])),
        "zoom": float(np.mean(zooms)),
        "object_motion": float(np.mean(resid)),
    }
    scores["camera_motion"] = classify_camera(scores)
    return scores


def classify_camera(s: dict, still: float = 0.15) -> str:
    """static / pan / tilt / zoom / shake from the clip's mean affine terms (pixels per frame)."""
    pan, tilt, zoom, shake = abs(s["pan"]), abs(s["tilt"]), abs(s["zoom"]), s["shake"]
    steady = max(pan, tilt, zoom)
    if shake > 0.8 and shake > steady:
        return "shake"
    if steady < still:
        return "static"
    if zoom >= pan and zoom >= tilt:
        return "zoom"
    return "pan" if pan >= tilt else "tilt"
