"""Guardrails: a text pre-guard in front of every world model and a video post-guard behind it.

API (what `predict`, the demo and any other generating command call)::

    from worldsmith.guardrail import Guardrail

    guard = Guardrail.for_command(policy_path, no_guard, "predict")   # or Guardrail.from_policy(path|None)
    verdict = guard.check_prompt(prompt)          # Verdict(allowed, reason, rule, category, score)
    if not verdict.allowed:
        raise SystemExit(f"error: prompt refused: {verdict.reason}")   # CLIs exit 3 on refusal
    guard.require_prompt(task, "data/robot: episode 3 task")   # the same, raising PromptRefused
    video, report = guard.guard_video(video)      # (T,H,W,3) uint8 -> blurred copy + VideoReport

- Pre-guard (`check_prompt`, `check_prompts` for batches): a blocklist matched on normalised words
  (`normalize.py`: accents, case, leetspeak, spaced/dotted letters, repeated letters, inflections;
  `blocklist.py` with the allow-list of `lexicon.yaml`), then a softmax classifier on offline
  all-MiniLM-L6-v2 embeddings (`semantic.py`, weights `semantic.safetensors`, trained on the labelled
  prompts of `prompts.txt`; `worldsmith guard train` reproduces them). The verdict names what fired:
  `blocklist:weapons (matched "b0mb")` or `semantic:violence p=0.93`.
- Post-guard (`guard_video`, `guard_video_file`): Haar-cascade face detection with rotated and
  profile passes, IoU tracking with carry and gap interpolation, Gaussian or pixelate blur of every
  tracked box (`faces.py`); then an optional `content_classifier` (any callable
  `frames -> ContentVerdict`, default none) that can refuse the video (it comes back black).
- Policy: one YAML file (`default_policy.yaml` holds the defaults; `policy.py`).
- Log: every decision is appended as one JSON line (time, prompt sha256 - never the prompt -,
  verdict, reason) to the policy's `log_path` (default `$WORLDSMITH_GUARD_LOG` or
  `~/.local/state/worldsmith/guardrail.jsonl`).
- Switching it off: `Guardrail.disabled(reason)` or `Guardrail.for_command(..., no_guard=True, ...)`.
  A reason is required, a warning is printed, and the disabling and every call made while disabled
  are logged; there is no silent way to skip the guard.
"""

__all__ = ["Guardrail", "PromptRefused", "Verdict", "VideoReport", "ContentClassifier", "ContentVerdict"]


def __getattr__(name: str):
    # lazy, so that importing the CLI group (`worldsmith --help`) does not load numpy and yaml
    if name in __all__:
        from worldsmith.guardrail import guard

        return getattr(guard, name)
    raise AttributeError(f"module 'worldsmith.guardrail' has no attribute {name!r}")
