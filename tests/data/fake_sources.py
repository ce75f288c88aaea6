"""Tiny sources registered only in tests (the real ones live in worldsmith.sources), to drive the CLI and demo."""

from __future__ import annotations

import sys
import types

from episode_fixtures import make_episode

from worldsmith import sources


def _fake_module() -> types.ModuleType:
    mod = types.ModuleType("fake_source_for_tests")
    mod.NAME, mod.DESCRIPTION, mod.FPS = "fake", "grey frames that count up", 10.0

    def generate(episodes, frames, size=64, seed=0, shade=0, **options):
        if options:
            raise ValueError(f"fake source: unknown options {sorted(options)}")
        for e in range(episodes):
            ep = make_episode(e, frames, height=size, width=size, seed=seed)
            ep.meta["shade"] = shade
            yield ep

    mod.generate = generate
    return mod


def _broken_module() -> types.ModuleType:
    mod = types.ModuleType("broken_source_for_tests")

    def generate(episodes, frames, size=64, seed=0, **options):
        yield make_episode(0, frames, height=size, width=size)
        raise RuntimeError("simulator crashed")

    mod.generate = generate
    return mod


def register(monkeypatch, only: bool = False) -> None:
    """Add `fake` and `broken` to the source registry (with `only`, make them the whole registry)."""
    monkeypatch.setitem(sys.modules, "fake_source_for_tests", _fake_module())
    monkeypatch.setitem(sys.modules, "broken_source_for_tests", _broken_module())
    table = {} if only else dict(sources.SOURCES)
    table.update({"fake": "fake_source_for_tests", "broken": "broken_source_for_tests"})
    monkeypatch.setattr(sources, "SOURCES", table)
