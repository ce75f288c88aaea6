"""Video in and out with PyAV: probe, read (seek, resample, resize, rotate), write H.264.

Frames are numpy uint8 arrays of shape (T, H, W, 3), RGB. Sources may be a path or an in-memory
bytes object (curation keeps clips in memory). Every failure to read becomes `VideoError`, whose
message starts with the file name and says what is wrong, so batch jobs can record it and go on.
No ffmpeg binary is involved: PyAV links the libraries.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import av
import cv2
import numpy as np

VideoSource = Union[str, os.PathLike, bytes, BinaryIO]


class VideoError(Exception):
    """A video that cannot be read or written; the message names the file and the problem."""

    def __init__(self, source: object, problem: str):
        self.source = _name(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # display width (after rotation)
    height: int  # display height (after rotation)
    fps: float
    duration: float  # seconds
    frame_count: int  # from the container when it says, else duration * fps
    codec: str
    rotation: int  # degrees counter-clockwise to apply for display (0, 90, 180, 270)
    has_audio: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes in memory>"
    return getattr(source, "name", "<stream>")


def _open(source: VideoSource) -> av.container.InputContainer:
    name = _name(source)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise VideoError(name, "no such file")
        if p.is_dir():
            raise VideoError(name, "is a directory, not a video file")
        if p.stat().st_size == 0:
            raise VideoError(name, "empty file (0 bytes)")
        target: object = str(p)
    elif isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise VideoError(name, "empty file (0 bytes)")
        target = io.BytesIO(source)
    else:
        target = source
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as e:
        raise VideoError(name, f"not a readable video container ({e.strerror or type(e).__name__})") from e
    except (OSError, ValueError) as e:
        raise VideoError(name, f"cannot open ({e})") from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        raise VideoError(name, f"no video stream (has: {', '.join(kinds)})")
    return container


def _rotation_of(stream: av.video.stream.VideoStream) -> int:
    """Display rotation in degrees counter-clockwise, normalised to {0, 90, 180, 270}."""
    rot = 0
    tag = stream.metadata.get("rotate")
    if tag is not None:
        try:
            rot = -int(float(tag))  # the legacy tag is clockwise
        except ValueError:
            rot = 0
    return int(round(rot / 90.0)) * 90 % 360


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(source: VideoSource) -> VideoInfo:
    """Metadata without decoding the picture (one packet header pass only when the container is silent)."""
    container = _open(source)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = int(stream.frames or 0)
        if frames <= 0:
            frames = int(round(duration * fps)) if fps > 0 else 0
        if frames <= 0:  # some containers (raw streams) say nothing: count packets, still no decode
            frames = sum(1 for pkt in container.demux(stream) if pkt.size > 0)
            if fps > 0 and duration <= 0:
                duration = frames / fps
        w, h = stream.codec_context.width, stream.codec_context.height
        if w <= 0 or h <= 0:
            raise VideoError(source, f"video stream has no picture size ({w}x{h})")
        rotation = _first_frame_rotation(container, stream, source)
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            path=_name(source),
            width=w,
            height=h,
            fps=fps,
            duration=duration,
            frame_count=frames,
            codec=stream.codec_context.name,
            rotation=rotation,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _first_frame_rotation(container, stream, source) -> int:
    """Rotation from the stream's display matrix (PyAV exposes it on frames); legacy tag as fallback."""
    tag = _rotation_of(stream)
    if tag:
        return tag
    try:
        container.seek(0)
        for frame in container.decode(stream):
            return int(round(frame.rotation / 90.0)) * 90 % 360
    except av.error.FFmpegError as e:
        raise VideoError(source, f"cannot decode the first frame ({e.strerror or type(e).__name__})") from e
    raise VideoError(source, "video stream holds no decodable frame")


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    # `rotation` is counter-clockwise degrees for display, as FFmpeg's display matrix reports it.
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(img, 1))
    if rotation == 180:
        return np.ascontiguousarray(img[::-1, ::-1])
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(img, -1))
    return img


def iter_frames(
    source: VideoSource,
    start: int = 0,
    end: int | None = None,
    fps: float | None = None,
    threads: int = 0,
    scale: tuple[int, int] | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames [start, end) in the output frame grid.

    `scale` = (height, width) stretches each displayed frame to that size while converting to RGB
    (shrinking the YUV planes first), which costs less than converting at full size, then resizing.

    The output grid is the stream's own rate, or `fps` when given: output frame i stands at time
    i / rate and shows the latest source frame whose timestamp is <= that time (so variable frame
    rate input comes out at a constant rate, frames repeated or dropped as needed). We seek to the
    keyframe before `start` rather than decoding from the beginning.
    """
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad frame range [{start}, {end})")
    container = _open(source)
    try:
        stream = container.streams.video[0]
        if threads > 0:  # a fixed decoder thread count (curation workers use 1: one worker, one core)
            stream.thread_count = threads
        else:
            stream.thread_type = "AUTO"
        src_fps = _stream_fps(stream)
        rate = float(fps) if fps else src_fps
        if rate <= 0:
            raise VideoError(source, "stream has no frame rate; pass fps explicitly")
        t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        # A quarter of the finer frame period absorbs timestamp rounding without skipping a slot.
        eps = 0.25 / max(src_fps, rate)
        t_start = start / rate
        if start > 0:
            offset = int((t0 + t_start) / stream.time_base)
            container.seek(max(offset, 0), stream=stream, backward=True, any_frame=False)
        index = start
        prev: np.ndarray | None = None
        rotation = _rotation_of(stream)
        reformatter = av.video.reformatter.VideoReformatter() if scale is not None else None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - t0
                # Emit every output slot that this frame's predecessor covers.
                while prev is not None and index / rate + eps < t:
                    if end is not None and index >= end:
                        return
                    yield prev
                    index += 1
                if end is not None and index >= end:
                    return
                rot = rotation or int(round(frame.rotation / 90.0)) * 90 % 360
                if scale is None:
                    prev = _rotate(frame.to_ndarray(format="rgb24"), rot)
                else:
                    sh, sw = (scale[1], scale[0]) if rot in (90, 270) else scale
                    # the packed I420 layout holds each chroma plane in H/4 full-width rows: needs H % 4 == 0
                    if (frame.format.name == "yuv420p" and sh % 4 == 0 and sw % 2 == 0
                            and frame.height % 4 == 0 and frame.width % 2 == 0):
                        prev = _rotate(_yuv420_scaled_rgb(frame.to_ndarray(), sh, sw), rot)
                    else:  # one reformatter per stream: frame.reformat would rebuild the swscale context each time
                        small = reformatter.reformat(frame, width=sw, height=sh, format="rgb24", interpolation="BILINEAR")
                        prev = _rotate(small.to_ndarray(), rot)
        except av.error.FFmpegError as e:
            raise VideoError(source, f"corrupt or truncated video data ({e.strerror or type(e).__name__})") from e
        # The last decoded frame covers the slots up to its end (one source frame long).
        if prev is not None:
            t_last_end = t + (1.0 / src_fps if src_fps > 0 else 1.0 / rate)
            while index / rate + eps < t_last_end and (end is None or index < end):
                yield prev
                index += 1
    finally:
        container.close()


def _yuv420_scaled_rgb(i420: np.ndarray, h: int, w: int) -> np.ndarray:
    """Shrink the Y, U, V planes of an I420 frame ((H*3/2, W) uint8) first, then convert to RGB.

    Converting the small planes instead of the full frame costs ~0.8 ms less per 640x360 frame on one core.
    """
    H, W = i420.shape[0] * 2 // 3, i420.shape[1]
    interp = cv2.INTER_AREA if h * w < H * W else cv2.INTER_LINEAR
    y = cv2.resize(i420[:H], (w, h), interpolation=interp)
    u = cv2.resize(i420[H: H + H // 4].reshape(H // 2, W // 2), (w // 2, h // 2), interpolation=interp)
    v = cv2.resize(i420[H + H // 4:].reshape(H // 2, W // 2), (w // 2, h // 2), interpolation=interp)
    return cv2.cvtColor(np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)]), cv2.COLOR_YUV2RGB_I420)


def read_video(
    source: VideoSource,
    start: int = 0,
    end: int | None = None,
    fps: float | None = None,
    size: int | tuple[int, int] | None = None,
    mode: str = "crop",
) -> np.ndarray:
    """Read frames [start, end) as (T, H, W, 3) uint8, optionally resampled to `fps` and resized.

    `size` is an int (square) or (height, width); `mode` is "crop" (resize the short side, then
    center-crop), "pad" (letterbox) or "stretch". Raises VideoError when nothing can be decoded.
    """
    frames = []
    for img in iter_frames(source, start, end, fps):
        frames.append(resize_frame(img, size, mode) if size is not None else img)
    if not frames:
        if start > 0:
            raise VideoError(source, f"no frames in range [{start}, {end}) (the video is shorter)")
        raise VideoError(source, "no decodable video frames (truncated or corrupt)")
    return np.stack(frames)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize_frame(img: np.ndarray, size: int | tuple[int, int], mode: str = "crop") -> np.ndarray:
    """Resize one (H, W, 3) frame to `size` by center-crop, letterbox pad, or stretch."""
    th, tw = _hw(size)
    h, w = img.shape[:2]
    if (h, w) == (th, tw):
        return img
    interp = cv2.INTER_AREA if th * tw < h * w else cv2.INTER_LINEAR
    if mode == "stretch":
        return cv2.resize(img, (tw, th), interpolation=interp)
    if mode == "crop":
        scale = max(th / h, tw / w)
        nh, nw = max(th, math.ceil(h * scale - 1e-6)), max(tw, math.ceil(w * scale - 1e-6))
        img = cv2.resize(img, (nw, nh), interpolation=interp)
        y, x = (nh - th) // 2, (nw - tw) // 2
        return np.ascontiguousarray(img[y : y + th, x : x + tw])
    if mode == "pad":
        scale = min(th / h, tw / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(img, (nw, nh), interpolation=interp)
        out = np.zeros((th, tw, 3), dtype=img.dtype)
        y, x = (th - nh) // 2, (tw - nw) // 2
        out[y : y + nh, x : x + nw] = small
        return out
    raise ValueError(f"unknown resize mode {mode!r} (crop, pad, stretch)")


def resize_video(frames: np.ndarray, size: int | tuple[int, int], mode: str = "crop") -> np.ndarray:
    return np.stack([resize_frame(f, size, mode) for f in frames])


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: replicate the last row/column of odd-sized frames."""
    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def _check_frames(frames: np.ndarray, where: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VideoError(where, f"frames must be (T>0, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise VideoError(where, f"frames must be uint8, got {frames.dtype}")
    return frames


def x264_options(width: int, preset: str = "medium", **extra: str) -> dict[str, str]:
    """libx264 options for a single-threaded encode that gives the same bytes for the same frames.

    x264's macroblock-tree rate control reads uninitialised stack memory when the picture is an odd number
    of 16-pixel macroblocks wide (valgrind on the PyAV wheel's libx264 build, 2026-11-27: widths 48, 80, 112
    and 720 px read it, with or without its assembly; 32, 64, 96, 128 and 256 px do not), and what is left on the
    stack then changes the encoder's choices: 300 encodes of the same 48-px-wide frames in one process gave 7
    different files (one decoded 1 grey level off in 8 frames). Turning the tree off for those widths only
    removes the reads; it costs some compression there (carphone, 176 px wide, crf 18: 4.1% more bytes and
    0.38 dB lower PSNR).
    """
    opts = {"preset": preset, "threads": "1", **extra}
    if (width + 15) // 16 % 2:
        opts["x264-params"] = "mbtree=0"
    return opts


def encode_video(frames: np.ndarray, fps: float, crf: int = 18, preset: str = "medium",
                 bitrate: int | None = None) -> bytes:
    """Encode (T, H, W, 3) uint8 RGB frames to H.264/yuv420p MP4 bytes, in memory.

    Odd sizes are padded by one replicated row/column (yuv420p needs even sides). Encoding is
    single-threaded and deterministic (`x264_options`): the same frames give the same bytes.
    """
    frames = _even(_check_frames(frames, "<frames>"))
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        rate = Fraction(fps).limit_denominator(1001)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        opts = x264_options(stream.width, preset)
        if bitrate:
            stream.bit_rate = int(bitrate)
        else:
            opts["crf"] = str(crf)
        stream.options = opts
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return buf.getvalue()


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 18,
                preset: str = "medium", bitrate: int | None = None) -> Path:
    """Write an H.264 MP4 atomically: encoded to a temp name beside `path`, then renamed."""
    path = Path(path)
    data = encode_video(frames, fps, crf=crf, preset=preset, bitrate=bitrate)
    atomic_write_bytes(path, data)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temp file in the same folder, fsync, rename: never a half file under `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (T, 3, H, W) in [-1, 1], the tensors models see."""
    return (frames.astype(np.float32).transpose(0, 3, 1, 2) / 127.5) - 1.0


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float (T, 3, H, W) in [-1, 1] -> uint8 (T, H, W, 3)."""
    x = np.clip((np.asarray(frames, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8).transpose(0, 2, 3, 1)
