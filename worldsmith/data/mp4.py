"""A streaming H.264 MP4 encoder: frames are appended episode after episode into one file.

LeRobot v3 packs several episodes into one mp4 and finds each by its [from, to) timestamps, so
the writer must keep one encoder open across episodes and know how large the file has grown
(to roll over to the next file). `worldsmith.video.encode_video` encodes a whole array at once;
this class is its incremental sibling (libx264, crf, single thread, so the same frames give the same
bytes), with a choice of chroma format: datasets default to yuv444p, because 4:2:0 chroma alone costs
small synthetic frames 5-10 dB (robot at 64x64: 30.5 dB yuv420p/crf18 vs 41.8 dB yuv444p/crf12).
Frames get pts = frame number in a 1/fps time base, so frame n of the file sits exactly at n / fps
and a reader can seek to it.

The file is encoded under a hidden temp name and renamed on `close()`; `abort()` deletes it.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from worldsmith.video import x264_options


class StreamingMp4:
    def __init__(self, path: str | os.PathLike, fps: float, height: int, width: int, crf: int = 18,
                 preset: str = "medium", pix_fmt: str = "yuv420p"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        self.height, self.width = height, width
        # 4:2:0 needs even sides: odd frames are padded by edge replication (the reader crops back).
        even = pix_fmt.startswith(("yuv420", "nv12"))
        self.coded_h, self.coded_w = (height + height % 2, width + width % 2) if even else (height, width)
        self.frames_written = 0
        self.bytes_muxed = 0
        self._container = av.open(str(self.tmp), mode="w", format="mp4")
        self._rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=self._rate)
        self._stream.width, self._stream.height = self.coded_w, self.coded_h
        self._stream.pix_fmt = pix_fmt
        # Frames are stamped in this fixed 1/fps base; the muxer later changes the *stream's* time
        # base (mp4 picks its own), so we must not read it back from the stream after the first mux.
        self._frame_time_base = 1 / self._rate
        self._stream.time_base = self._frame_time_base
        self._stream.codec_context.thread_count = 1
        # A keyframe at least every 2 s bounds the decode work of a seek; every episode also starts
        # on a forced IDR frame (see `append`), so reading one episode never decodes its neighbours.
        gop = max(2, int(round(2 * fps)))
        self._stream.options = x264_options(self.coded_w, preset, crf=str(crf), g=str(gop), **{"forced-idr": "1"})

    def append(self, frames: np.ndarray) -> None:
        """Encode (T, H, W, 3) uint8 frames after those already in the file; the first is a keyframe."""
        if frames.shape[1:3] != (self.height, self.width):
            raise ValueError(f"{self.path}: frames are {frames.shape[1]}x{frames.shape[2]}, "
                             f"this file holds {self.height}x{self.width}")
        ph, pw = self.coded_h - self.height, self.coded_w - self.width
        if ph or pw:
            frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if i == 0:
                frame.pict_type = av.video.frame.PictureType.I
            frame.pts = self.frames_written
            frame.time_base = self._frame_time_base
            self._mux(self._stream.encode(frame))
            self.frames_written += 1

    def _mux(self, packets) -> None:
        for pkt in packets:
            self.bytes_muxed += pkt.size
            self._container.mux(pkt)

    def close(self) -> Path:
        """Flush the encoder, finish the container and move it under its final name."""
        self._mux(self._stream.encode())
        self._container.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away anyway
            pass
        self.tmp.unlink(missing_ok=True)
