"""Shot boundaries (PySceneDetect, fed our own frames) and the clip plan: shots -> trimmed windows.

The splitter is streaming: frames go in one at a time and clips come out as soon as they are known,
so a long video never sits in memory whole. A clip is known when its last frame plus the trim margin
plus the detector's look-ahead have been seen without a cut inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from worldsmith.curate.config import SplitConfig


@dataclass(frozen=True)
class ClipSpan:
    shot: int  # shot index in the input
    window: int  # window index inside the shot
    start: int  # first frame (output frame grid)
    end: int  # one past the last frame
    shot_start: int
    shot_end: int  # -1 while the shot is still open (windows cut from a long shot before it ends)


def make_detector(cfg: SplitConfig):
    from scenedetect import AdaptiveDetector, ContentDetector

    if cfg.detector == "content":
        return ContentDetector(threshold=cfg.threshold, min_scene_len=cfg.min_shot_frames)
    if cfg.detector == "adaptive":
        return AdaptiveDetector(min_scene_len=cfg.min_shot_frames)
    raise ValueError(f"unknown shot detector {cfg.detector!r} (content, adaptive)")


class ShotSplitter:
    """Feed small RGB frames in order; `feed` returns the clip spans that became final."""

    def __init__(self, cfg: SplitConfig, fps: float):
        from scenedetect.common import FrameTimecode

        self._timecode = lambda i: FrameTimecode(i, fps=fps)
        self.cfg = cfg
        self.detector = make_detector(cfg)
        self.cuts: list[int] = []  # frame index where each new shot starts
        self.n = 0  # frames seen
        self.shot = 0
        self.shot_start = 0
        self.next_start = 0  # first frame of the next window of the open shot
        self.window = 0
        # How many frames after a cut the detector may report it (PySceneDetect reports at the cut frame,
        # its flash filter can hold a cut back up to min_scene_len frames).
        self.lookahead = cfg.min_shot_frames

    def feed(self, small_rgb: np.ndarray) -> list[ClipSpan]:
        bgr = cv2.cvtColor(small_rgb, cv2.COLOR_RGB2BGR)
        found = [int(tc.frame_num) for tc in self.detector.process_frame(self._timecode(self.n), bgr)]
        self.n += 1
        out: list[ClipSpan] = []
        for cut in found:
            if cut <= self.shot_start:
                continue
            out += self._close_shot(cut, at_cut=True)
            self.cuts.append(cut)
        out += self._open_windows()
        return out

    def finish(self) -> list[ClipSpan]:
        """Close the last shot at the end of the video."""
        return self._close_shot(self.n, at_cut=False)

    def _open_windows(self) -> list[ClipSpan]:
        """Windows of a long shot that no later cut can reach any more."""
        cfg = self.cfg
        out = []
        start = self.next_clip_start()
        while start + cfg.max_frames + cfg.trim_frames + self.lookahead <= self.n:
            out.append(ClipSpan(self.shot, self.window, start, start + cfg.max_frames, self.shot_start, -1))
            self.window += 1
            self.next_start = start + cfg.max_frames
            start = self.next_start
        return out

    def next_clip_start(self) -> int:
        if self.next_start > self.shot_start:
            return self.next_start
        return self.shot_start + (self.cfg.trim_frames if self.shot > 0 else 0)

    def _close_shot(self, end: int, at_cut: bool) -> list[ClipSpan]:
        cfg = self.cfg
        stop = end - (cfg.trim_frames if at_cut else 0)
        out = []
        start = self.next_clip_start()
        while start < stop:
            w_end = min(start + cfg.max_frames, stop)
            out.append(ClipSpan(self.shot, self.window, start, w_end, self.shot_start, end))
            self.window += 1
            start = w_end
        self.shot += 1
        self.shot_start = end
        self.next_start = end
        self.window = 0
        return out


def detect_cuts(frames: np.ndarray, cfg: SplitConfig, fps: float) -> list[int]:
    """Cut frames of a whole (T, H, W, 3) video: a convenience for tests and benchmarks."""
    splitter = ShotSplitter(cfg, fps)
    h, w = frames.shape[1:3]
    size = (cfg.analysis_width, max(2, round(h * cfg.analysis_width / w)))
    for f in frames:
        splitter.feed(cv2.resize(f, size, interpolation=cv2.INTER_AREA))
    splitter.finish()
    return splitter.cuts
