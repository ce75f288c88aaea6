"""The guardrail policy: one YAML file configures the text pre-guard, the video post-guard and the log.

`default_policy.yaml` (shipped beside this module) is the policy used when none is given; a user
policy file only needs the keys it changes, the rest is taken from the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from worldsmith.config import ConfigError, from_dict
from worldsmith.guardrail.faces import BlurConfig, DetectorConfig, TrackerConfig

ALL_CATEGORIES = ["violence", "weapons", "sexual", "sexual_minors", "self_harm", "hate"]


@dataclass
class TextPolicy:
    categories: list[str] = field(default_factory=lambda: list(ALL_CATEGORIES))  # refused categories
    blocklist: bool = True
    semantic: bool = True
    # refuse when P(unsafe) >= this; None: the threshold calibrated with the weights (`guard train`
    # picks it on K-fold out-of-fold scores of the train split and stores it in the safetensors metadata)
    semantic_threshold: float | None = None
    semantic_weights: str | None = None  # None: the shipped semantic.safetensors
    # a prompt whose only blocklist hits are the lexicon's context terms ("bombed the exam") is refused when
    # P(unsafe) >= this (or semantic_threshold, if lower); None: blocklist.CONTEXT_THRESHOLD. Without the
    # semantic check, context terms are refused like any other term
    context_threshold: float | None = None
    # the same for a context term written with a trick ("b0mbed", "st abs"); None: blocklist.DISGUISED_CONTEXT_THRESHOLD
    disguised_context_threshold: float | None = None
    lexicon: str | None = None  # None: the shipped lexicon.yaml
    allowlist_add: list[str] = field(default_factory=list)
    blocklist_add: dict[str, list[str]] = field(default_factory=dict)
    max_chars: int = 4000  # longer prompts are refused outright (nobody needs more for a video)


@dataclass
class VideoPolicy:
    face_blur: bool = True
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)


@dataclass
class Policy:
    text: TextPolicy = field(default_factory=TextPolicy)
    video: VideoPolicy = field(default_factory=VideoPolicy)
    # JSONL decision log; None: $WORLDSMITH_GUARD_LOG, else ~/.local/state/worldsmith/guardrail.jsonl
    log_path: str | None = None

    def resolved_log_path(self) -> Path:
        if self.log_path:
            return Path(self.log_path).expanduser()
        env = os.environ.get("WORLDSMITH_GUARD_LOG")
        if env:
            return Path(env).expanduser()
        state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        return Path(state) / "worldsmith" / "guardrail.jsonl"


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def default_policy_dict() -> dict:
    return yaml.safe_load(resources.files("worldsmith.guardrail").joinpath("default_policy.yaml").read_text())


def load_policy(path: str | os.PathLike | None = None) -> Policy:
    """The shipped default policy, overlaid with the YAML file at `path` if given."""
    data = default_policy_dict()
    where = "default_policy.yaml"
    if path is not None:
        where = str(path)
        try:
            user = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: policy file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if user is not None and not isinstance(user, dict):
            raise ConfigError(f"{path}: a policy must be a mapping with keys text, video, log_path")
        data = _merge(data, user or {})
    policy = from_dict(Policy, data, where)
    unknown = set(policy.text.categories) - set(ALL_CATEGORIES) - set(policy.text.blocklist_add)
    if unknown:
        raise ConfigError(f"{where}: unknown text categories {sorted(unknown)} (known: {ALL_CATEGORIES})")
    if policy.text.semantic_threshold is not None and not 0.0 < policy.text.semantic_threshold <= 1.0:
        raise ConfigError(f"{where}: text.semantic_threshold must be in (0, 1]")
    for name in ("context_threshold", "disguised_context_threshold"):
        value = getattr(policy.text, name)
        if value is not None and not 0.0 < value <= 1.0:
            raise ConfigError(f"{where}: text.{name} must be in (0, 1]")
    if policy.video.blur.method not in ("gaussian", "pixelate"):
        raise ConfigError(f"{where}: video.blur.method must be gaussian or pixelate")
    return policy
