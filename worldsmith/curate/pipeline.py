"""The per-input stages: decode -> split -> per-clip scores and verdicts -> transcode.

`process_input` is a pure function of (input item, config): it returns the clip records of one video
(every clip, accepted or rejected, with all its scores) and the encoded MP4 of every clip that passed
the per-clip filters. It knows nothing about engines; `run_input` wraps it for them, writing the result
as one tar file under a temp name and renaming it: that file is the input's completion record.

Memory stays bounded: frames are streamed, and only the frames of the clip being built (at most
`split.max_frames` plus the detector's look-ahead) are held, at the output size.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from worldsmith.curate import embed, motion, quality, textdetect
from worldsmith.curate.config import CurateConfig
from worldsmith.curate.inputs import InputItem
from worldsmith.curate.split import ClipSpan, ShotSplitter
from worldsmith.video import VideoError, encode_video, iter_frames, probe, resize_frame

MIN_SIDE, MAX_SIDE, MAX_ASPECT = 16, 8192, 8.0


@dataclass
class InputResult:
    item: InputItem
    info: dict  # width, height, fps, duration, frames, source, task, error
    cuts: list[int] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    mp4: dict[str, bytes] = field(default_factory=dict)  # clip_id -> H.264 MP4 (per-clip filters passed)
    thumbs: dict[str, bytes] = field(default_factory=dict)  # clip_id -> PNG thumbnail (every clip)


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at `short_side` (never upscaled), both even, aspect kept."""
    s = min(short_side, min(width, height))
    scale = s / min(width, height)
    return max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)


def _frames_of(item: InputItem, cfg: CurateConfig) -> tuple[dict, Iterator[np.ndarray] | None]:
    """Input facts and an iterator over its RGB frames; raises VideoError for unreadable input."""
    if item.is_episode:
        from worldsmith.data.lerobot import LeRobotDataset

        try:
            ep = LeRobotDataset(item.path).episode(item.episode)
        except Exception as e:  # a broken dataset is bad input like a broken file
            raise VideoError(item.label, f"cannot read episode ({e})") from e
        t, h, w = ep.frames.shape[:3]
        meta = {k: v for k, v in (ep.meta or {}).items() if isinstance(v, (str, int, float, bool))}
        info = {"width": w, "height": h, "fps": float(ep.fps), "duration": t / float(ep.fps), "frame_count": t,
                "codec": "episode", "source": str(meta.get("source", "episode")), "task": ep.task or "",
                "meta": meta}
        frames = iter(ep.frames)
        if cfg.split.fps and abs(cfg.split.fps - ep.fps) > 1e-6:  # nearest-earlier frame resampling, as video.py
            idx = [int(i * ep.fps / cfg.split.fps + 1e-6) for i in range(int(t * cfg.split.fps / ep.fps))]
            frames = (ep.frames[i] for i in idx)
            info["fps"] = float(cfg.split.fps)
        return info, frames
    vi = probe(item.path)
    info = {"width": vi.width, "height": vi.height, "fps": vi.fps, "duration": vi.duration,
            "frame_count": vi.frame_count, "codec": vi.codec, "source": "video", "task": "",
            "meta": {"file": Path(item.path).name}}
    if cfg.split.fps:
        info["fps"] = float(cfg.split.fps)
    return info, None  # decoded by `process_input` once the output size is known


def _check_dims(item: InputItem, w: int, h: int) -> None:
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE or max(w, h) / max(min(w, h), 1) > MAX_ASPECT:
        raise VideoError(item.label, f"absurd dimensions {w}x{h} (need sides {MIN_SIDE}..{MAX_SIDE}, aspect <= {MAX_ASPECT:g})")


def process_input(item: InputItem, cfg: CurateConfig) -> InputResult:
    try:
        info, frames = _frames_of(item, cfg)
        _check_dims(item, info["width"], info["height"])
        if info["fps"] <= 0:
            raise VideoError(item.label, "no frame rate")
    except VideoError as e:
        return _failed(item, {"error": str(e)}, str(e))
    res = InputResult(item=item, info=info)
    out_hw = output_size(info["width"], info["height"], cfg.transcode.short_side)
    if frames is None:  # a video file: scaled to the output size while decoding, one decoder thread per worker
        frames = iter_frames(item.path, fps=cfg.split.fps or None, threads=1, scale=out_hw)
    aw = min(cfg.split.analysis_width, out_hw[1])
    small_hw = (max(2, round(out_hw[0] * aw / out_hw[1])), aw)
    splitter = ShotSplitter(cfg.split, info["fps"])
    buf: deque[tuple[int, np.ndarray, np.ndarray]] = deque()  # (frame index, output RGB, small grey)
    n = peak = 0  # peak: most frames held at once, the memory bound (max_frames + trim + look-ahead)
    try:
        for rgb in frames:
            if rgb.shape[1] != info["width"] or rgb.shape[0] != info["height"]:
                _check_dims(item, rgb.shape[1], rgb.shape[0])
            out = resize_frame(rgb, out_hw, "stretch")
            small = cv2.resize(out, (small_hw[1], small_hw[0]), interpolation=cv2.INTER_AREA)
            buf.append((n, out, cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)))
            n += 1
            for span in splitter.feed(small):
                _emit(res, span, buf, cfg)
            while buf and buf[0][0] < splitter.next_clip_start():  # no clip can start before it any more
                buf.popleft()
            peak = max(peak, len(buf))
    except VideoError as e:
        # Truncated or corrupt data mid-stream: keep the clips before the damage, and say so in an input row.
        res.info["error"] = str(e)
        res.records.append(_input_row(item, info, str(e)))
    expected = int(round(float(info.get("duration") or 0) * info["fps"]))
    if "error" not in res.info and not item.is_episode and 0 < n < 0.95 * expected - 1:
        # The container promised more than the stream held (a cut-off download): keep what decoded, say so.
        message = f"{item.label}: truncated (decoded {n} of {expected} frames)"
        res.info["error"] = message
        res.records.append(_input_row(item, info, message))
    for span in splitter.finish():
        _emit(res, span, buf, cfg)
    res.cuts = list(splitter.cuts)
    res.info["decoded_frames"] = n
    res.info["peak_buffered_frames"] = peak
    if n == 0 and "error" not in res.info:
        return _failed(item, info, f"{item.label}: no decodable video frames")
    shot_end = {}
    for r in res.records:
        if r["stage"] != "input":
            shot_end[r["shot"]] = max(shot_end.get(r["shot"], 0), r["shot_end"])
    for r in res.records:
        if r["stage"] != "input" and r["shot_end"] < 0:
            r["shot_end"] = shot_end[r["shot"]]
    return res


def _failed(item: InputItem, info: dict, message: str) -> InputResult:
    info = {**info, "error": message}
    return InputResult(item=item, info=info, records=[_input_row(item, info, message)])


def _input_row(item: InputItem, info: dict, message: str) -> dict:
    return {"clip_id": f"{item.input_id}_input", "stage": "input", "status": "rejected", "reason": "bad_input",
            "detail": message, "shot": -1, "window": -1, "start": -1, "end": -1, "shot_start": -1, "shot_end": -1}


def _emit(res: InputResult, span: ClipSpan, buf: deque, cfg: CurateConfig) -> None:
    frames = [(o, g) for i, o, g in buf if span.start <= i < span.end]
    if not frames:  # cannot happen while the buffer keeps the open shot; never crash a whole input on it
        return
    out = np.stack([o for o, _ in frames])
    grey = [g for _, g in frames]
    rec, thumb, mp4 = analyze_clip(res.item, span, out, grey, res.info, cfg)
    res.records.append(rec)
    res.thumbs[rec["clip_id"]] = thumb
    if mp4 is not None:
        res.mp4[rec["clip_id"]] = mp4


def analyze_clip(item: InputItem, span: ClipSpan, out: np.ndarray, grey: list[np.ndarray], info: dict,
                 cfg: CurateConfig) -> tuple[dict, bytes, bytes | None]:
    """Every score of one clip, the first failed filter (if any), a thumbnail, and the MP4 if it passed."""
    f = cfg.filters
    n = len(out)
    fps = info["fps"]
    rec = {"clip_id": f"{item.input_id}_{span.start:06d}_{span.end:06d}", "stage": "", "status": "accepted",
           "reason": "", "detail": "", "shot": span.shot, "window": span.window, "start": span.start,
           "end": span.end, "shot_start": span.shot_start, "shot_end": span.shot_end,
           "frames": n, "fps": fps, "duration_s": n / fps, "height": int(out.shape[1]), "width": int(out.shape[2])}
    rec.update(motion.motion_scores(grey, f.flow_pairs))
    keys = [out[i] for i in quality.keyframe_indices(n, f.text_frames)]
    rec.update(quality.quality_scores(keys))
    rec["text_prob"] = textdetect.text_probability(keys)
    rec["exact_hash"] = embed.exact_hash(grey)
    rec["dhash"] = [format(embed.dhash(k), "016x") for k in keys]
    rec["embedding"] = embed.embedding(keys).round(5).tolist()
    checks = [
        ("split", "too_short", n < cfg.split.min_frames, f"{n} frames < {cfg.split.min_frames}"),
        ("motion", "static", rec["motion"] < f.min_motion, f"motion {rec['motion']:.3f} < {f.min_motion}"),
        ("motion", "shaky", rec["shake"] > f.max_shake, f"shake {rec['shake']:.2f} > {f.max_shake}"),
        ("quality", "blurry", rec["sharpness"] < f.min_sharpness, f"sharpness {rec['sharpness']:.1f} < {f.min_sharpness}"),
        ("quality", "too_dark", rec["dark_fraction"] > f.max_dark_fraction, f"dark fraction {rec['dark_fraction']:.2f}"),
        ("quality", "overexposed", rec["bright_fraction"] > f.max_bright_fraction, f"bright fraction {rec['bright_fraction']:.2f}"),
        ("text", "text_overlay", rec["text_prob"] > f.max_text_prob, f"text probability {rec['text_prob']:.2f} > {f.max_text_prob}"),
    ]
    for stage, reason, failed, detail in checks:
        if failed:
            rec.update(stage=stage, status="rejected", reason=reason, detail=detail)
            break
    mid = out[n // 2]
    tw = cfg.transcode.thumb_width
    th = max(2, round(mid.shape[0] * tw / mid.shape[1]))
    ok, png = cv2.imencode(".png", cv2.cvtColor(cv2.resize(mid, (tw, th), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    mp4 = None
    if rec["status"] == "accepted":
        mp4 = encode_video(out, fps, crf=cfg.transcode.crf, preset=cfg.transcode.preset)
        rec["bytes"] = len(mp4)
    return rec, png.tobytes(), mp4


# ---------------------------------------------------------------------------------------------- result files


def result_path(work_dir: Path, item: InputItem, fingerprint: str) -> Path:
    return Path(work_dir) / f"{item.input_id}.{fingerprint}.tar"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))


def write_result(res: InputResult, path: Path) -> None:
    """One tar per input: result.json, then the clips' mp4 and png. Temp name, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    head = {"item": res.item.to_dict(), "info": res.info, "cuts": res.cuts, "records": res.records}
    with open(tmp, "wb") as fh:
        with tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _add(tar, "result.json", json.dumps(head, sort_keys=True).encode())
            for cid in sorted(res.mp4):
                _add(tar, f"{cid}.mp4", res.mp4[cid])
            for cid in sorted(res.thumbs):
                _add(tar, f"{cid}.png", res.thumbs[cid])
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_result(path: Path) -> InputResult:
    with tarfile.open(path, "r") as tar:
        head = json.loads(tar.extractfile("result.json").read())
        res = InputResult(item=InputItem(**head["item"]), info=head["info"], cuts=head["cuts"], records=head["records"])
        for m in tar.getmembers():
            if m.name.endswith(".mp4"):
                res.mp4[m.name[:-4]] = tar.extractfile(m).read()
            elif m.name.endswith(".png"):
                res.thumbs[m.name[:-4]] = tar.extractfile(m).read()
    return res


def run_input(item: InputItem, cfg: CurateConfig, work_dir: str) -> dict:
    """What an engine runs for one input: process, write the completion record, return a small summary."""
    cv2.setNumThreads(1)  # one worker, one core: the engine decides the parallelism
    t0 = time.perf_counter()
    res = process_input(item, cfg)
    write_result(res, result_path(Path(work_dir), item, cfg.stage_fingerprint()))
    return {"input_id": item.input_id, "seconds": time.perf_counter() - t0,
            "duration": float(res.info.get("decoded_frames", 0)) / max(float(res.info.get("fps") or 1.0), 1e-6),
            "clips": sum(r["stage"] != "input" for r in res.records), "error": res.info.get("error", "")}
