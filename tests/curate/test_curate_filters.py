"""Motion classes, the text detector on held-out frames, and the three kinds of dedup."""

import cv2
import numpy as np
from curate_helpers import sample

from worldsmith.curate.config import DedupConfig
from worldsmith.curate.dedup import deduplicate
from worldsmith.curate.motion import motion_scores
from worldsmith.curate.synth import _landscape
from worldsmith.curate.textdetect import render_caption, text_probability
from worldsmith.video import read_video


def _world():
    return cv2.cvtColor(_landscape(np.random.default_rng(1), 240, 420), cv2.COLOR_RGB2GRAY)


def _crops(world, offsets, scales=None, h=90, w=160):
    out = []
    for i, (dx, dy) in enumerate(offsets):
        s = 1.0 if scales is None else scales[i]
        cx, cy = 210 + dx, 120 + dy
        hw, hh = w * s / 2, h * s / 2
        crop = world[int(cy - hh): int(cy + hh), int(cx - hw): int(cx + hw)]
        out.append(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA))
    return out


def test_camera_motion_classes():
    world = _world()
    n = 20
    rng = np.random.default_rng(0)
    static = motion_scores(_crops(world, [(0, 0)] * n))
    pan = motion_scores(_crops(world, [(-40 + 3 * i, 0) for i in range(n)]))
    tilt = motion_scores(_crops(world, [(0, -30 + 3 * i) for i in range(n)]))
    zoom = motion_scores(_crops(world, [(0, 0)] * n, scales=[1.0 - 0.02 * i for i in range(n)]))
    shake = motion_scores(_crops(world, [tuple(rng.integers(-8, 9, 2)) for _ in range(n)]))
    assert static["camera_motion"] == "static" and static["motion"] < 0.05
    assert pan["camera_motion"] == "pan" and abs(pan["pan"]) > 2
    assert tilt["camera_motion"] == "tilt"
    assert zoom["camera_motion"] == "zoom"
    assert shake["camera_motion"] == "shake" and shake["shake"] > 2.5


def test_text_detector_on_held_out_video():
    frames = read_video(sample("carphone_pristine"), size=(180, 320))[::6]  # never seen in training
    rng = np.random.default_rng(7)
    clean = [text_probability([f]) for f in frames]
    texted = [text_probability([render_caption(f, rng)]) for f in frames]
    accuracy = (sum(p < 0.5 for p in clean) + sum(p > 0.5 for p in texted)) / (2 * len(frames))
    assert accuracy >= 0.8, (clean, texted)


def _rec(cid, h, dh, emb):
    return {"clip_id": cid, "status": "accepted", "exact_hash": h, "dhash": dh, "embedding": emb}


def test_dedup_exact_near_semantic_keep_the_first():
    rng = np.random.default_rng(0)
    e = [rng.standard_normal(16) for _ in range(6)]
    e = [v / np.linalg.norm(v) for v in e]
    near = e[3] + 0.01 * rng.standard_normal(16)
    recs = [
        _rec("a", "h1", ["00000000000000ff", "ff00000000000000"], e[0].tolist()),
        _rec("b", "h1", ["00000000000000ff", "ff00000000000000"], e[0].tolist()),  # exact copy of a
        _rec("c", "h2", ["00000000000000fe", "ff00000000000001"], e[1].tolist()),  # 1-bit changes of a: near
        _rec("d", "h3", ["ffffffff00000000", "0000ffff0000ffff"], e[3].tolist()),
        _rec("e", "h4", ["0f0f0f0f0f0f0f0f", "f0f0f0f0f0f0f0f0"], (near / np.linalg.norm(near)).tolist()),  # semantic twin of d
        _rec("f", "h5", ["123456789abcdef0", "0fedcba987654321"], e[5].tolist()),
    ]
    deduplicate(recs, DedupConfig(near_hamming=4, clusters=1, semantic_threshold=0.99))
    got = {r["clip_id"]: (r["reason"] if r["status"] == "rejected" else "", r["dup_of"]) for r in recs}
    assert got == {"a": ("", ""), "b": ("duplicate_exact", "a"), "c": ("duplicate_near", "a"), "d": ("", ""),
                   "e": ("duplicate_semantic", "d"), "f": ("", "")}
