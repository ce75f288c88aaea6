"""Frames per second of every data source at 64x64, beside the raw renderer/emulator/decoder it wraps.

    .venv/bin/python benchmarks/sources.py [--quick]

"ours" is `worldsmith.sources.generate(name, ...)` end to end: scene or emulator setup, rendering,
resizing and every ground-truth column. The baselines measure the bare engine underneath, without
our bookkeeping, in the same process:
  driving: our rasterizer alone (`render_frame` on scenes built beforehand; no scene building, no columns)
  atari:   ALE act() x frame_skip + getScreenRGB() per frame at 210x160, no resize, no policy
  videos:  PyAV decode of the same frames at full size (`iter_frames`), no resize
Sources owned elsewhere (robot, camera, physics) are timed end to end only; a source that fails to
import or run is reported as unavailable with the reason, never a crash. Writes
benchmarks/results/sources.json with a `headline` object.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worldsmith.config import save_json  # noqa: E402
from worldsmith.sources import SOURCES, generate, get_source  # noqa: E402

SIZE = 64
RESULTS = Path(__file__).resolve().parent / "results" / "sources.json"


class Timer:
    """Wall and CPU time of a block. On a shared machine the wall clock counts other people's work
    too; frames per CPU second (this process, all its threads) is the figure that travels."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def rates(self, frames: int) -> dict:
        return {"frames": frames, "seconds": round(self.wall, 3), "cpu_seconds": round(self.cpu, 3),
                "frames_per_s": round(frames / self.wall, 1), "frames_per_cpu_s": round(frames / max(self.cpu, 1e-9), 1)}


def time_ours(name: str, episodes: int, frames: int) -> dict:
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        list(generate(name, 1, 2, size=SIZE, seed=1))  # warm-up: lazy imports and first-call costs, untimed
    with warnings.catch_warnings(), Timer() as timer:
        warnings.simplefilter("ignore")
        for ep in generate(name, episodes, frames, size=SIZE, seed=0):
            count += ep.length
    return timer.rates(count)


def baseline_driving(episodes: int, frames: int) -> dict:
    from worldsmith.sources import driving, episode_rng_seed

    scenes = [driving.make_scene(np.random.default_rng(episode_rng_seed(0, k)), frames, SIZE) for k in range(episodes)]
    for scene in scenes:  # build the per-scene vehicle template outside the timed loop
        driving.vehicle_quads(scene, 0)
    with Timer() as timer:
        for scene in scenes:
            for t in range(frames):
                driving.render_frame(scene, t)
    return {"what": "render_frame on pre-built scenes (rasterizer only)", **timer.rates(episodes * frames)}


def baseline_atari(episodes: int, frames: int) -> dict:
    from worldsmith.sources import atari

    ale = atari.make_emulator(atari.DEFAULT_GAME, 0)
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(0)
    n = episodes * frames
    with Timer() as timer:
        for _ in range(n):
            a = actions[int(rng.integers(len(actions)))]
            for _ in range(atari.FRAME_SKIP):
                ale.act(a)
                if ale.game_over():
                    ale.reset_game()
            ale.getScreenRGB()
    return {"what": f"ALE act x{atari.FRAME_SKIP} + getScreenRGB (210x160), no resize", **timer.rates(n)}


def baseline_videos(episodes: int, frames: int) -> dict:
    from worldsmith.sources import videos
    from worldsmith.video import iter_frames

    files = videos.list_videos(None)
    n = 0
    with Timer() as timer:
        for k in range(episodes):  # the same windows the source reads: round-robin over files
            path, window = files[k % len(files)], k // len(files)
            for _ in iter_frames(path, window * frames, (window + 1) * frames):
                n += 1
    return {"what": "PyAV decode of the same windows at full size (iter_frames), no resize", **timer.rates(n)}


BASELINES = {"driving": baseline_driving, "atari": baseline_atari, "videos": baseline_videos}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer episodes and frames; ends within a minute")
    args = parser.parse_args()
    episodes, frames = (3, 16) if args.quick else (6, 32)

    rows = {}
    for name in SOURCES:
        try:
            get_source(name)
        except Exception as e:  # noqa: BLE001 - another engineer's source may not exist yet
            rows[name] = {"status": "unavailable", "reason": f"{type(e).__name__}: {e}".splitlines()[0]}
            continue
        try:
            ours = time_ours(name, episodes, frames)
        except Exception as e:  # noqa: BLE001
            rows[name] = {"status": "failed", "reason": f"{type(e).__name__}: {e}".splitlines()[0]}
            continue
        row = {"status": "ok", **ours}
        if name in BASELINES:
            try:
                row["baseline"] = BASELINES[name](episodes, frames)
            except Exception as e:  # noqa: BLE001
                row["baseline"] = {"what": "failed", "reason": f"{type(e).__name__}: {e}"}
        rows[name] = row

    print(f"sources at {SIZE}x{SIZE}, {episodes} episodes x {frames} frames each")
    print("fps = frames per wall second; cpu = frames per CPU second of this process (load-independent)")
    print(f"{'source':<9} {'status':<12} {'ours fps':>9} {'ours cpu':>9} {'base fps':>9} {'base cpu':>9}  baseline")
    for name, row in rows.items():
        if row["status"] != "ok":
            print(f"{name:<9} {row['status']:<12} {'-':>9} {'-':>9} {'-':>9} {'-':>9}  {row['reason']}")
            continue
        base = row.get("baseline", {})
        print(f"{name:<9} {'ok':<12} {row['frames_per_s']:>9.1f} {row['frames_per_cpu_s']:>9.1f} "
              f"{base.get('frames_per_s', '-'):>9} {base.get('frames_per_cpu_s', '-'):>9}  "
              f"{base.get('what', '(none: end to end only)')}")

    headline = {f"{name}_fps": row["frames_per_s"] for name, row in rows.items() if row["status"] == "ok"}
    headline.update({f"{name}_fps_cpu": row["frames_per_cpu_s"] for name, row in rows.items() if row["status"] == "ok"})
    headline["unavailable"] = [name for name, row in rows.items() if row["status"] != "ok"]
    headline["size"] = SIZE
    save_json({"size": SIZE, "episodes": episodes, "frames": frames, "quick": args.quick, "sources": rows,
               "headline": headline}, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
