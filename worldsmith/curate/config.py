"""Curation settings: one dataclass per stage, gathered in `CurateConfig`, overridable with `--set a.b=c`.

The defaults are tuned on the sample videos (bikes, bigbuckbunny, carphone) and the synthetic compilation
(`worldsmith curate synth`); thresholds are on the analysis resolution stated beside each one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from worldsmith.config import to_dict


@dataclass
class SplitConfig:
    detector: str = "content"  # PySceneDetect detector: "content" or "adaptive"
    threshold: float = 27.0  # ContentDetector threshold (HSV delta, 0-255 scale)
    analysis_width: int = 160  # frames are shrunk to this width for shot detection and optical flow
    min_shot_frames: int = 8  # the detector's own minimum scene length
    max_frames: int = 128  # long shots are cut into windows of at most this many frames
    min_frames: int = 16  # clips shorter than this (after trimming) are rejected as too_short
    trim_frames: int = 1  # frames dropped on each side of a detected cut (soft edges, flashes)
    fps: float = 0.0  # output frame rate; 0 keeps the source rate


@dataclass
class TranscodeConfig:
    short_side: int = 180  # output clips keep their aspect ratio; the short side becomes this (even)
    crf: int = 23
    preset: str = "superfast"  # x264 preset: throughput matters here; veryfast costs ~1.6x the encode time
    thumb_width: int = 96  # thumbnails kept in the catalog for contact sheets


@dataclass
class FilterConfig:
    # motion, from DIS optical flow at `split.analysis_width`, in pixels per frame at that width
    flow_pairs: int = 12  # frame pairs sampled per clip
    min_motion: float = 0.08  # mean flow magnitude below this: static clip (frozen, slideshow)
    max_shake: float = 2.5  # mean frame-to-frame jitter of the camera translation above this: shaking
    # visual quality, on grey frames at the output resolution (short side `transcode.short_side`)
    min_sharpness: float = 20.0  # variance of the Laplacian below this: blurred
    max_dark_fraction: float = 0.85  # fraction of pixels with luma < 16
    max_bright_fraction: float = 0.85  # fraction of pixels with luma > 239
    # burnt-in text, from the logistic-regression text detector (worldsmith/curate/text_detector.json)
    max_text_prob: float = 0.7  # held-out: 1.8% of clean frames and 77% of captioned frames score above it
    text_frames: int = 3  # keyframes scored per clip


@dataclass
class DedupConfig:
    exact: bool = True
    near: bool = True
    near_hamming: int = 10  # max mean Hamming distance (of 64 bits) between keyframe dHashes
    semantic: bool = True
    clusters: int = 8  # k-means clusters (SemDeDup); fewer when there are fewer clips
    semantic_threshold: float = 0.985  # cosine similarity above which two clips in a cluster are duplicates
    seed: int = 0


@dataclass
class ShardConfig:
    max_clips: int = 256  # clips per tar before rolling over to the next shard
    frame_buckets: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    captioner: str = "template"  # "template", or "module:function" called with (record, mp4_bytes) -> str


@dataclass
class CurateConfig:
    split: SplitConfig = field(default_factory=SplitConfig)
    transcode: TranscodeConfig = field(default_factory=TranscodeConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)

    def stage_fingerprint(self) -> str:
        """Hash of the settings that per-input results depend on (dedup and sharding are global, redone each run)."""
        part = {k: to_dict(self)[k] for k in ("split", "transcode", "filters")}
        return hashlib.sha1(json.dumps(part, sort_keys=True).encode()).hexdigest()[:12]
