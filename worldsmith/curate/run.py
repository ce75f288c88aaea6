"""A curation run: expand inputs, process the unfinished ones with an engine, assemble shards and catalog.

Layout of DIR:
    config.json              the resolved config
    work/<input>.<cfg>.tar   one completion record per input (per-input clips and scores), atomic
    shards/<bucket>/shard-NNNNNN.tar   WebDataset shards of the accepted clips
    catalog.parquet          one row per clip (accepted or rejected) and per bad input, every score
    summary.json             counts by status and reason, input seconds, throughput
Assembly is a deterministic function of the per-input records, so a run killed at any moment and rerun
gives the same shards and catalog as an uninterrupted run; work already recorded is never redone.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from worldsmith.config import save_json, to_dict
from worldsmith.curate import caption as captions
from worldsmith.curate.config import CurateConfig
from worldsmith.curate.dedup import deduplicate
from worldsmith.curate.engines import run_engine
from worldsmith.curate.inputs import InputItem
from worldsmith.curate.pipeline import read_result, result_path
from worldsmith.curate.shard import write_catalog, write_shards


def pending(items: list[InputItem], cfg: CurateConfig, work: Path) -> list[InputItem]:
    fp = cfg.stage_fingerprint()
    return [it for it in items if not result_path(work, it, fp).exists()]


def curate(items: list[InputItem], out: str | Path, cfg: CurateConfig, engine: str = "local", workers: int = 1,
           address: str | None = None, on_done: Callable[[dict], None] | None = None) -> dict:
    out = Path(out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for tmp in list(out.rglob(".*.tmp*")):  # half-written files of a killed run: never under a final name
        tmp.unlink()
    save_json(cfg, out / "config.json")
    todo = pending(items, cfg, work)
    t0 = time.perf_counter()
    stats: list[dict] = []

    def done(s: dict) -> None:
        stats.append(s)
        if on_done:
            on_done(s)

    if todo:
        run_engine(engine, todo, cfg, str(work), workers, done, address)
    t_process = time.perf_counter() - t0
    summary = assemble(items, out, cfg)
    summary.update(engine=engine, workers=workers, processed_now=len(todo), skipped_done=len(items) - len(todo),
                   process_seconds=round(t_process, 3))
    save_json(summary, out / "summary.json")
    return summary


class _Mp4Loader:
    """Reads clip MP4s from the per-input records on demand, one open tar at a time (bounded memory)."""

    def __init__(self, where: dict[str, Path]):
        self.where, self.path, self.tar = where, None, None

    def __call__(self, clip_id: str) -> bytes:
        path = self.where[clip_id]
        if path != self.path:
            if self.tar:
                self.tar.close()
            self.tar, self.path = tarfile.open(path, "r"), path
        return self.tar.extractfile(f"{clip_id}.mp4").read()

    def close(self) -> None:
        if self.tar:
            self.tar.close()


def assemble(items: list[InputItem], out: Path, cfg: CurateConfig) -> dict:
    fp = cfg.stage_fingerprint()
    rows: list[dict] = []
    where: dict[str, Path] = {}
    cuts: dict[str, list[int]] = {}
    input_seconds = 0.0
    for it in sorted(items, key=lambda i: i.input_id):
        path = result_path(out / "work", it, fp)
        res = read_result(path)
        info = res.info
        dur = float(info.get("decoded_frames", 0)) / float(info["fps"]) if info.get("fps") else 0.0
        input_seconds += dur
        cuts[it.input_id] = res.cuts
        for rec in sorted(res.records, key=lambda r: (r["start"], r["end"])):
            row = dict(rec)
            row.update(input=it.label, input_id=it.input_id, episode=it.episode, source=info.get("source", ""),
                       task=info.get("task", ""), input_duration_s=dur, thumbnail=res.thumbs.get(rec["clip_id"]))
            if rec["clip_id"] in res.mp4:
                where[rec["clip_id"]] = path
            rows.append(row)
        del res
    clips = [r for r in rows if r["stage"] != "input"]
    deduplicate(clips, cfg.dedup)
    plugin = captions.load_captioner(cfg.shard.captioner)
    load = _Mp4Loader(where)
    try:
        for r in clips:
            r["tags"] = captions.tags_of(r)
            r["template_caption"] = captions.template_caption(r)
            r["caption"] = r["template_caption"]
            if plugin is not None and r["status"] == "accepted":
                r["caption"] = str(plugin(r, load(r["clip_id"])))
        accepted = [r for r in clips if r["status"] == "accepted"]
        written = write_shards_lazy(out, accepted, load, cfg)
    finally:
        load.close()
    for old in (out / "shards").rglob("*.tar") if (out / "shards").exists() else []:
        if old not in written:  # shards of an earlier run with other inputs or settings
            old.unlink()
    write_catalog(out / "catalog.parquet", rows)
    by_reason = Counter(r["reason"] for r in rows if r["status"] == "rejected")
    return {
        "inputs": len(items),
        "bad_inputs": sum(r["stage"] == "input" for r in rows),
        "input_seconds": round(input_seconds, 3),
        "clips": len(clips),
        "accepted": len(accepted),
        "accepted_seconds": round(sum(r["duration_s"] for r in accepted), 3),
        "rejected": dict(sorted(by_reason.items())),
        "shards": [str(p.relative_to(out)) for p in written],
        "cuts": cuts,
        "config": to_dict(cfg),
    }


def write_shards_lazy(out: Path, accepted: list[dict], load: Callable[[str], bytes], cfg: CurateConfig) -> list[Path]:
    class _Lazy(dict):
        def __missing__(self, key: str) -> bytes:
            return load(key)

    return write_shards(out, accepted, _Lazy(), cfg.shard.frame_buckets, cfg.shard.max_clips)


def load_summary(out: str | Path) -> dict:
    return json.loads((Path(out) / "summary.json").read_text())
