"""Engines run `pipeline.run_input` over the inputs that have no completion record yet.

- local: a process pool (forkserver, so workers start from a clean, preloaded process and never inherit
  the driver's threads), at most 2 x workers inputs in flight, results streamed to disk by the workers.
- ray: the same function as a Ray task (1 CPU each); `ray.init(num_cpus=workers)` starts a local Ray
  when no address is given, else it joins the cluster at `address`.
Both call `on_done(summary)` as each input finishes; neither knows what the stages do.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable

from worldsmith.curate.config import CurateConfig
from worldsmith.curate.inputs import InputItem
from worldsmith.curate.pipeline import run_input

OnDone = Callable[[dict], None]


def run_local(items: list[InputItem], cfg: CurateConfig, work_dir: str, workers: int, on_done: OnDone) -> None:
    if workers <= 1:
        for it in items:
            on_done(run_input(it, cfg, work_dir))
        return
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["worldsmith.curate.pipeline"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        todo = list(items)
        running = set()
        while todo or running:
            while todo and len(running) < 2 * workers:
                running.add(pool.submit(run_input, todo.pop(0), cfg, work_dir))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                on_done(fut.result())


def run_ray(items: list[InputItem], cfg: CurateConfig, work_dir: str, workers: int, on_done: OnDone,
            address: str | None = None) -> None:
    import ray

    started = not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(run_input)
        cfg_ref = ray.put(cfg)
        todo = list(items)
        running: list = []
        while todo or running:
            while todo and len(running) < 2 * max(1, workers):
                running.append(task.remote(todo.pop(0), cfg_ref, work_dir))
            done, running = ray.wait(running, num_returns=1)
            for ref in done:
                on_done(ray.get(ref))
    finally:
        if started:
            ray.shutdown()


def run_engine(engine: str, items: list[InputItem], cfg: CurateConfig, work_dir: str, workers: int, on_done: OnDone,
               address: str | None = None) -> None:
    if engine == "local":
        run_local(items, cfg, work_dir, workers, on_done)
    elif engine == "ray":
        run_ray(items, cfg, work_dir, workers, on_done, address)
    else:
        raise ValueError(f"unknown engine {engine!r} (local, ray)")
