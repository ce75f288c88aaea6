"""Tags and captions from the measured scores, source metadata and task strings.

The template caption says only what was measured. A captioning model plugs in through the config
(`shard.captioner = "package.module:function"`): the function gets the clip record (scores, tags, task)
and the clip's MP4 bytes and returns a caption; the template caption stays in the record as `template_caption`.
"""

from __future__ import annotations

import importlib
from typing import Callable


def tags_of(r: dict) -> list[str]:
    tags = [f"camera:{r['camera_motion']}"]
    m = r["motion"]
    tags.append("motion:low" if m < 0.5 else "motion:medium" if m < 2.0 else "motion:high")
    b = r["brightness"]
    tags.append("light:dark" if b < 0.3 else "light:bright" if b > 0.65 else "light:normal")
    c = r["colourfulness"]  # Hasler-Suesstrunk: < 15 "not colourful", > 45 "quite colourful" and up
    tags.append("colour:muted" if c < 15 else "colour:colourful" if c > 45 else "colour:moderate")
    d = r["duration_s"]
    tags.append("length:short" if d < 2 else "length:medium" if d < 6 else "length:long")
    if r.get("source"):
        tags.append(f"source:{r['source']}")
    return tags


_CAMERA = {"static": "a static camera", "pan": "a panning camera", "tilt": "a tilting camera",
           "zoom": "a zooming camera", "shake": "a handheld, shaking camera"}


def template_caption(r: dict) -> str:
    t = dict(tag.split(":", 1) for tag in r["tags"])
    motion = {"low": "little", "medium": "moderate", "high": "fast"}[t["motion"]]
    light = {"dark": "dark", "bright": "bright", "normal": "evenly lit"}[t["light"]]
    colour = {"muted": "muted", "colourful": "colourful", "moderate": "natural"}[t["colour"]]
    text = (f"A {r['duration_s']:.1f}-second {light}, {colour} {r.get('source') or 'video'} clip "
            f"with {motion} motion, filmed by {_CAMERA.get(r['camera_motion'], 'a camera')}.")
    if r.get("task"):
        text += f" Task: {r['task'].rstrip('.')}."
    return text


def load_captioner(spec: str) -> Callable[[dict, bytes], str] | None:
    """None for the template; else the function named "module:function"."""
    if spec in ("", "template"):
        return None
    if ":" not in spec:
        raise ValueError(f"captioner {spec!r}: expected 'template' or 'package.module:function'")
    mod, fn = spec.split(":", 1)
    return getattr(importlib.import_module(mod), fn)
