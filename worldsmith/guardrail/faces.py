"""Face detection, tracking and blurring for the video post-guard.

Detection: OpenCV's Haar cascades (Viola and Jones, CVPR 2001) - the frontal cascade on the frame
and on copies rotated in-plane by a few angles (the stock cascade only finds upright faces: a head
tilted by 25 degrees is missed), plus the profile cascade on the frame and its mirror image
(the profile cascade only knows faces looking one way). Small frames are upscaled first, since the
cascade's smallest window is 24 pixels.

Tracking: detections are associated across frames by IoU (greedy, best pair first). A track
that misses a frame keeps its box for up to `max_missed` frames, gaps between two detections of
the same track are filled by linear interpolation, and since the whole clip is known, a track is
also carried `max_missed` frames *before* its first detection. So a face missed in one frame is
still covered. Every tracked box, padded, is blurred.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]  # x, y, w, h in pixels of the original frame


@dataclass
class DetectorConfig:
    scale_factor: float = 1.1  # cascade pyramid step; smaller finds more and costs more
    min_neighbors: int = 4  # overlapping raw hits needed to keep a face
    angles: tuple[float, ...] = (0.0, -25.0, 25.0)  # in-plane rotations tried with the frontal cascade
    profile: bool = True  # also run the profile cascade (and on the mirrored frame)
    min_detect_side: int = 160  # frames with a shorter side are upscaled to this before detection
    min_face_fraction: float = 0.1  # smallest face side, as a fraction of the frame's shorter side


@dataclass
class TrackerConfig:
    iou_threshold: float = 0.2  # a detection joins a track whose last box overlaps it this much
    max_missed: int = 8  # frames a track is carried without a detection (both directions)
    max_gap: int = 45  # longest gap between two detections that is interpolated
    pad: float = 0.25  # each box is grown by this fraction of its size on every side before blurring


@dataclass
class BlurConfig:
    method: str = "gaussian"  # "gaussian" or "pixelate"
    strength: float = 0.3  # gaussian sigma as a fraction of the box side; pixelate: cell size fraction


@dataclass
class FaceTrack:
    boxes: dict[int, Box] = field(default_factory=dict)  # frame index -> detected box
    last: int = -1


def _cascade(name: str):
    import cv2

    c = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if c.empty():
        raise RuntimeError(f"{name}: OpenCV Haar cascade could not be loaded (need opencv-python-headless<5)")
    return c


class FaceDetector:
    def __init__(self, cfg: DetectorConfig = DetectorConfig()):
        self.cfg = cfg
        self.frontal = _cascade("haarcascade_frontalface_default.xml")
        self.side = _cascade("haarcascade_profileface.xml") if cfg.profile else None

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Faces in one RGB uint8 frame, as (x, y, w, h) boxes merged across passes."""
        import cv2

        h, w = frame.shape[:2]
        scale = max(1.0, self.cfg.min_detect_side / min(h, w))
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale > 1.0:
            gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        gray = cv2.equalizeHist(gray)
        min_side = max(20, int(self.cfg.min_face_fraction * min(gray.shape)))
        boxes: list[Box] = []
        for angle in self.cfg.angles:
            boxes += self._rotated(gray, angle, self.frontal, min_side)
        if self.side is not None:
            boxes += self._run(gray, self.side, min_side)
            gw = gray.shape[1]
            boxes += [(gw - x - bw, y, bw, bh) for x, y, bw, bh in self._run(gray[:, ::-1].copy(), self.side, min_side)]
        merged = merge_boxes(boxes)
        return [(x / scale, y / scale, bw / scale, bh / scale) for x, y, bw, bh in merged]

    def _run(self, gray, cascade, min_side) -> list[Box]:
        found = cascade.detectMultiScale(gray, scaleFactor=self.cfg.scale_factor,
                                         minNeighbors=self.cfg.min_neighbors, minSize=(min_side, min_side))
        return [tuple(map(float, b)) for b in found]

    def _rotated(self, gray, angle, cascade, min_side) -> list[Box]:
        import cv2

        if angle == 0:
            return self._run(gray, cascade, min_side)
        h, w = gray.shape
        # rotate about the centre onto a canvas big enough to hold the whole frame
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
        m[0, 2] += nw / 2 - w / 2
        m[1, 2] += nh / 2 - h / 2
        rot = cv2.warpAffine(gray, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)
        inv = cv2.invertAffineTransform(m)
        out = []
        for x, y, bw, bh in self._run(rot, cascade, min_side):
            corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], np.float64)
            back = corners @ inv.T  # corners in the unrotated frame
            x0, y0 = back.min(0)
            x1, y1 = back.max(0)
            # the axis-aligned hull of a rotated square is too large by 1/(cos+sin): shrink back around the centre
            shrink = 1.0 / (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle))))
            cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * shrink
            out.append((cx - s / 2, cy - s / 2, s, s))
        return out


def iou(a: Box, b: Box) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def merge_boxes(boxes: list[Box], threshold: float = 0.3) -> list[Box]:
    """Greedy grouping of overlapping boxes from several passes; each group becomes its mean box."""
    groups: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: -b[2] * b[3]):
        for g in groups:
            if iou(g[0], b) >= threshold:
                g.append(b)
                break
        else:
            groups.append([b])
    return [tuple(float(v) for v in np.mean(g, axis=0)) for g in groups]


def _lerp(a: Box, b: Box, t: float) -> Box:
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))


def link_tracks(detections: list[list[Box]], cfg: TrackerConfig = TrackerConfig()) -> list[FaceTrack]:
    """Associate per-frame detections into tracks by IoU (greedy, best pair first)."""
    tracks: list[FaceTrack] = []
    for t, dets in enumerate(detections):
        live = [k for k, tr in enumerate(tracks) if t - tr.last <= cfg.max_gap]
        pairs = sorted(((iou(tracks[k].boxes[tracks[k].last], d), k, j) for k in live for j, d in enumerate(dets)),
                       reverse=True)
        used_t, used_d = set(), set()
        for score, k, j in pairs:
            if score < cfg.iou_threshold or k in used_t or j in used_d:
                continue
            tracks[k].boxes[t] = dets[j]
            tracks[k].last = t
            used_t.add(k)
            used_d.add(j)
        for j, d in enumerate(dets):
            if j not in used_d:
                tracks.append(FaceTrack({t: d}, t))
    return tracks


def track_span(track: FaceTrack, n: int, cfg: TrackerConfig = TrackerConfig()) -> dict[int, Box]:
    """One track's box in every frame it covers: its detections, the gaps between them interpolated,
    and `max_missed` frames carried before its first and after its last detection."""
    frames = sorted(track.boxes)
    out = dict(track.boxes)
    for a, b in zip(frames, frames[1:]):
        if b - a > 1 and b - a <= cfg.max_gap:  # fill the gap between two detections
            for t in range(a + 1, b):
                out[t] = _lerp(track.boxes[a], track.boxes[b], (t - a) / (b - a))
        elif b - a > cfg.max_gap:  # too long to interpolate: carry both ends a little (max_gap > 2 max_missed)
            for t in range(a + 1, min(a + 1 + cfg.max_missed, b)):
                out[t] = track.boxes[a]
            for t in range(max(b - cfg.max_missed, a + 1), b):
                out[t] = track.boxes[b]
    for t in range(max(0, frames[0] - cfg.max_missed), frames[0]):
        out[t] = track.boxes[frames[0]]
    for t in range(frames[-1] + 1, min(n, frames[-1] + 1 + cfg.max_missed)):
        out[t] = track.boxes[frames[-1]]
    return out


def track_faces(detections: list[list[Box]], cfg: TrackerConfig = TrackerConfig()) -> list[list[Box]]:
    """Per-frame detections -> per-frame boxes to blur, after IoU tracking, carrying and interpolation."""
    n = len(detections)
    out: list[list[Box]] = [[] for _ in range(n)]
    for tr in link_tracks(detections, cfg):
        for t, box in track_span(tr, n, cfg).items():
            out[t].append(box)
    return [merge_boxes(b, threshold=0.5) if len(b) > 1 else b for b in out]


def pad_box(box: Box, pad: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Grow a box by `pad` of its size on each side, clip to the frame, return integer x0, y0, x1, y1."""
    x, y, w, h = box
    H, W = shape
    x0 = int(np.floor(max(0.0, x - pad * w)))
    y0 = int(np.floor(max(0.0, y - pad * h)))
    x1 = int(np.ceil(min(float(W), x + w * (1 + pad))))
    y1 = int(np.ceil(min(float(H), y + h * (1 + pad))))
    return x0, y0, x1, y1


def blur_region(frame: np.ndarray, rect: tuple[int, int, int, int], cfg: BlurConfig = BlurConfig()) -> None:
    """Blur frame[y0:y1, x0:x1] in place, strongly enough that a face cannot be recognised."""
    import cv2

    x0, y0, x1, y1 = rect
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = frame[y0:y1, x0:x1]
    side = max(x1 - x0, y1 - y0)
    if cfg.method == "pixelate":
        cell = max(2, int(round(side * cfg.strength)))
        small = cv2.resize(roi, (max(1, (x1 - x0) // cell), max(1, (y1 - y0) // cell)), interpolation=cv2.INTER_AREA)
        frame[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    elif cfg.method == "gaussian":
        sigma = max(1.0, side * cfg.strength)
        frame[y0:y1, x0:x1] = cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                               borderType=cv2.BORDER_REPLICATE)
    else:
        raise ValueError(f"unknown blur method {cfg.method!r} (gaussian or pixelate)")
