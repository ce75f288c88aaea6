"""The one entry point every generating command calls: `Guardrail` (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from worldsmith.guardrail.policy import Policy, load_policy

log = logging.getLogger("worldsmith.guardrail")
_write_lock = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # "ok", 'blocklist:weapons (matched "b0mb")', "semantic:violence p=0.93", ...
    rule: str = "none"  # which check decided: none, blocklist, semantic, length, disabled
    category: str | None = None
    score: float | None = None  # P(unsafe) from the semantic classifier when it ran

    def to_dict(self) -> dict:
        return asdict(self)


class PromptRefused(ValueError):
    """`Guardrail.require_prompt` refused a prompt; `source` says where it came from. CLIs exit 3 on it."""

    def __init__(self, source: str, verdict: Verdict):
        super().__init__(f"{source}: prompt refused: {verdict.reason}")
        self.source, self.verdict = source, verdict


@dataclass(frozen=True)
class ContentVerdict:
    allowed: bool
    reason: str = "ok"
    score: float | None = None


class ContentClassifier(Protocol):
    """Plug-in point of the post-guard: any callable taking the (T, H, W, 3) uint8 video (after face
    blurring) and returning a ContentVerdict. A refused video is replaced by black frames."""

    def __call__(self, frames: np.ndarray) -> ContentVerdict: ...


@dataclass
class VideoReport:
    frames: int
    faces_detected: list[int] = field(default_factory=list)  # raw detections per frame
    faces_blurred: list[int] = field(default_factory=list)  # boxes blurred per frame, after tracking
    boxes: list[list[list[int]]] = field(default_factory=list)  # per frame: [x0, y0, x1, y1] blurred
    allowed: bool = True
    reason: str = "ok"
    seconds: float = 0.0

    @property
    def frames_with_faces_blurred(self) -> int:
        return sum(1 for n in self.faces_blurred if n > 0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["frames_with_faces_blurred"] = self.frames_with_faces_blurred
        return d


def prompt_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Guardrail:
    """Text pre-guard and video post-guard under one policy; every decision is logged as JSONL."""

    def __init__(self, policy: Policy | None = None, *, content_classifier: ContentClassifier | None = None,
                 enabled: bool = True, disabled_reason: str = "", policy_source: str = "default"):
        if not enabled and not disabled_reason.strip():
            raise ValueError("disabling the guardrail needs an explicit reason (e.g. the --no-guard flag)")
        self.policy = policy or load_policy()
        self.content_classifier = content_classifier
        self.enabled = enabled
        self.disabled_reason = disabled_reason.strip()
        self.policy_source = policy_source
        self._blocklist = None
        self._semantic = None
        self._detector = None
        if not enabled:
            log.warning("guardrail DISABLED: %s", self.disabled_reason)
            print(f"warning: guardrail disabled ({self.disabled_reason}); this is logged to {self.log_path}",
                  file=sys.stderr)
            self._log({"kind": "guard_disabled", "reason": self.disabled_reason})

    @property
    def log_path(self) -> Path:
        """Resolved at each write, so $WORLDSMITH_GUARD_LOG set later still counts."""
        return self.policy.resolved_log_path()

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_policy(cls, path: str | os.PathLike | None = None, *,
                    content_classifier: ContentClassifier | None = None) -> "Guardrail":
        """The guard under the policy at `path` (None: the shipped default policy)."""
        return cls(load_policy(path), content_classifier=content_classifier,
                   policy_source=str(path) if path is not None else "default")

    @classmethod
    def disabled(cls, reason: str, policy_path: str | os.PathLike | None = None) -> "Guardrail":
        """A guard that allows everything and blurs nothing, logging each call. `reason` is required
        (say which flag turned it off) and the disabling itself is logged."""
        return cls(load_policy(policy_path), enabled=False, disabled_reason=reason,
                   policy_source=str(policy_path) if policy_path is not None else "default")

    @classmethod
    def for_command(cls, policy_path: str | os.PathLike | None, no_guard: bool, command: str) -> "Guardrail":
        """What a generating command (predict, demo) calls with its --guard-policy / --no-guard options."""
        if no_guard:
            return cls.disabled(f"--no-guard passed to `{command}`", policy_path)
        return cls.from_policy(policy_path)

    # pieces, built on first use so that a text-only caller never loads OpenCV and vice versa ------
    @property
    def blocklist(self):
        if self._blocklist is None:
            from worldsmith.guardrail.blocklist import Blocklist

            t = self.policy.text
            self._blocklist = Blocklist.from_lexicon(t.lexicon, t.blocklist_add, t.allowlist_add, t.categories)
        return self._blocklist

    @property
    def semantic(self):
        if self._semantic is None:
            from worldsmith.guardrail.semantic import SemanticClassifier

            self._semantic = SemanticClassifier.load(self.policy.text.semantic_weights)
        return self._semantic

    @property
    def detector(self):
        if self._detector is None:
            from worldsmith.guardrail.faces import FaceDetector

            self._detector = FaceDetector(self.policy.video.detector)
        return self._detector

    # text pre-guard -----------------------------------------------------------------------------
    def check_prompt(self, text: str) -> Verdict:
        return self.check_prompts([text])[0]

    def require_prompt(self, text: str, source: str = "prompt") -> Verdict:
        """`check_prompt`, raising `PromptRefused` (naming `source`, e.g. a dataset episode) on a refusal."""
        verdict = self.check_prompt(text)
        if not verdict.allowed:
            raise PromptRefused(source, verdict)
        return verdict

    def check_prompts(self, texts: list[str]) -> list[Verdict]:
        """One verdict per prompt, in order; the semantic model embeds all remaining prompts at once."""
        verdicts: list[Verdict | None] = [None] * len(texts)
        if not self.enabled:
            verdicts = [Verdict(True, f"guard disabled: {self.disabled_reason}", "disabled") for _ in texts]
        else:
            t = self.policy.text
            context_hits = {}  # prompt index -> its first context hit, decided with the classifier below
            for i, text in enumerate(texts):
                if len(text) > t.max_chars:
                    verdicts[i] = Verdict(False, f"length: prompt has {len(text)} characters (max {t.max_chars})",
                                          "length")
                elif t.blocklist:
                    hits = self.blocklist.match(text)  # hard hits first
                    if hits and hits[0].context and t.semantic:
                        context_hits[i] = hits[0]
                    elif hits:
                        h = hits[0]
                        verdicts[i] = Verdict(False, f'blocklist:{h.category} (matched "{h.surface}")', "blocklist",
                                              h.category)
            todo = [i for i, v in enumerate(verdicts) if v is None]
            if t.semantic and todo:
                scores = self.semantic.score([texts[i] for i in todo], t.categories)
                threshold = t.semantic_threshold if t.semantic_threshold is not None else self.semantic.threshold
                for i, (p, cat) in zip(todo, scores):
                    verdicts[i] = self._semantic_verdict(p, cat, threshold, context_hits.get(i))
            verdicts = [v or Verdict(True, "ok") for v in verdicts]
        for text, v in zip(texts, verdicts):
            self._log({"kind": "prompt", "prompt_sha256": prompt_sha256(text), "allowed": v.allowed,
                       "verdict": "allowed" if v.allowed else "refused", "reason": v.reason, "rule": v.rule,
                       "category": v.category, "score": v.score})
        return verdicts

    def _semantic_verdict(self, p: float, category: str, threshold: float, context_hit=None) -> Verdict:
        """The verdict from the classifier's P(unsafe) `p`, for a prompt whose only blocklist hits (if any) are
        context terms, `context_hit` the first of them (a disguised one if any)."""
        score = round(p, 4)
        if context_hit is not None:
            from worldsmith.guardrail.blocklist import context_threshold

            ct = context_threshold(context_hit, self.policy.text, threshold)
            h = context_hit
            what = f'"{h.surface}", disguised' if h.disguised else f'"{h.surface}"'
            if p >= ct:
                return Verdict(False, f"blocklist:{h.category} (matched {what}, semantic p={p:.2f} >= {ct:.2f})",
                               "blocklist", h.category, score)
            return Verdict(True, f"ok (context term {what}, semantic p={p:.2f} < {ct:.2f})", "none", None, score)
        if p >= threshold:
            return Verdict(False, f"semantic:{category} p={p:.2f}", "semantic", category, score)
        return Verdict(True, f"ok (semantic p={p:.2f})", "none", None, score)

    # video post-guard ---------------------------------------------------------------------------
    def guard_video(self, frames: np.ndarray, progress: Callable[[int, int], None] | None = None,
                    source: str = "<array>") -> tuple[np.ndarray, VideoReport]:
        """(T, H, W, 3) uint8 -> (a blurred copy, report). The input array is never modified."""
        from worldsmith.guardrail.faces import blur_region, pad_box, track_faces

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"{source}: expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        start = time.perf_counter()
        n = len(frames)
        out = frames.copy()
        report = VideoReport(frames=n)
        if not self.enabled:
            report.reason = f"guard disabled: {self.disabled_reason}"
            report.faces_detected = report.faces_blurred = [0] * n
            report.boxes = [[] for _ in range(n)]
        else:
            v = self.policy.video
            if v.face_blur:
                detections = []
                for t, f in enumerate(frames):
                    detections.append(self.detector.detect(f))
                    if progress:
                        progress(t + 1, n)
                tracked = track_faces(detections, v.tracker)
                report.faces_detected = [len(d) for d in detections]
                for t, boxes in enumerate(tracked):
                    rects = [pad_box(b, v.tracker.pad, frames.shape[1:3]) for b in boxes]
                    for r in rects:
                        blur_region(out[t], r, v.blur)
                    report.boxes.append([list(r) for r in rects])
                    report.faces_blurred.append(len(rects))
            else:
                report.faces_detected = report.faces_blurred = [0] * n
                report.boxes = [[] for _ in range(n)]
            if self.content_classifier is not None:
                cv = self.content_classifier(out)
                if not cv.allowed:
                    out[:] = 0  # a refused video is never handed back
                    report.allowed, report.reason = False, f"content:{cv.reason}"
        report.seconds = time.perf_counter() - start
        self._log({"kind": "video", "source": source, "frames": n, "allowed": report.allowed,
                   "verdict": "allowed" if report.allowed else "refused", "reason": report.reason,
                   "frames_with_faces_blurred": report.frames_with_faces_blurred})
        return out, report

    def guard_video_file(self, src, out_path, progress=None, crf: int = 18) -> VideoReport:
        """Read a video (worldsmith.video), guard it, write it (atomically) at the same fps."""
        from worldsmith.video import probe, read_video, write_video

        info = probe(src)
        frames = read_video(src)
        guarded, report = self.guard_video(frames, progress, source=str(src))
        write_video(out_path, guarded, info.fps, crf=crf)
        return report

    # log ----------------------------------------------------------------------------------------
    def _log(self, record: dict) -> None:
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                  "guard_enabled": self.enabled, "policy": self.policy_source, **record}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        path = Path(self.log_path)
        with _write_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:  # one write per line: O_APPEND keeps lines whole
                f.write(line)
