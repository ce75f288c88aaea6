"""An HTML report of a curation run, from its catalog queried with DuckDB, with matplotlib figures as PNG.

Sections: the funnel (input hours, then clips surviving each stage), rejection reasons, score histograms
(accepted vs rejected) and contact sheets (thumbnails) of accepted and rejected clips.
"""

from __future__ import annotations

import html
import io
import os
from pathlib import Path

import numpy as np

STAGES = ["split", "motion", "quality", "text", "dedup_exact", "dedup_near", "dedup_semantic"]
SCORES = ["motion", "shake", "sharpness", "brightness", "colourfulness", "text_prob"]


def query(catalog: Path, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW catalog AS SELECT * FROM read_parquet('{catalog}')")
    return con.execute(sql).fetchall()


def funnel(catalog: Path) -> list[tuple[str, int]]:
    hours = query(catalog, "SELECT coalesce(sum(d), 0) / 3600 FROM (SELECT DISTINCT input_id, input_duration_s d FROM catalog)")[0][0]
    inputs = query(catalog, "SELECT count(DISTINCT input_id), count(DISTINCT input_id) FILTER (WHERE stage = 'input') FROM catalog")[0]
    total = query(catalog, "SELECT count(*) FROM catalog WHERE stage <> 'input'")[0][0]
    lost = dict(query(catalog, "SELECT stage, count(*) FROM catalog WHERE status = 'rejected' AND stage <> 'input' GROUP BY stage"))
    rows = [(f"inputs ({inputs[1]} unreadable), {hours:.4f} h of video", inputs[0]), ("clips after shot split", total)]
    left = total
    for s in STAGES:
        left -= lost.get(s, 0)
        rows.append((f"after {s}", left))
    return rows


def _fig_to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def histograms(catalog: Path) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, col in zip(axes.ravel(), SCORES):
        for status, colour in (("accepted", "tab:green"), ("rejected", "tab:red")):
            vals = [v for (v,) in query(catalog, f"SELECT {col} FROM catalog WHERE status = '{status}' AND stage <> 'input' AND {col} IS NOT NULL")]
            if vals:
                ax.hist(vals, bins=20, alpha=0.6, color=colour, label=status)
        ax.set_title(col)
        ax.legend(fontsize=7)
    fig.tight_layout()
    png = _fig_to_png(fig)
    plt.close(fig)
    return png


def contact_sheet(catalog: Path, status: str, limit: int = 48) -> bytes | None:
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = query(catalog, f"SELECT clip_id, reason, thumbnail FROM catalog WHERE status = '{status}' AND thumbnail IS NOT NULL "
                          f"ORDER BY reason, clip_id LIMIT {limit}")
    if not rows:
        return None
    cols = 6
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 2.2, nrows * 1.7), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (cid, reason, thumb) in zip(axes.ravel(), rows):
        img = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
        ax.imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        ax.set_title((reason or "accepted") + "\n" + cid[-20:], fontsize=6)
    fig.tight_layout()
    png = _fig_to_png(fig)
    plt.close(fig)
    return png


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def make_report(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    from worldsmith.video import atomic_write_bytes

    run_dir, out = Path(run_dir), Path(out)
    catalog = run_dir / "catalog.parquet"
    assets = out.with_suffix("").with_name(out.stem + "_files")
    assets.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>Curation report: {html.escape(str(run_dir))}</h1>"]
    parts.append("<h2>Funnel</h2>" + _table(["stage", "count"], funnel(catalog)))
    reasons = query(catalog, "SELECT reason, stage, count(*) n, round(sum(duration_s), 2) FROM catalog WHERE status = 'rejected' "
                             "GROUP BY reason, stage ORDER BY n DESC")
    parts.append("<h2>Rejection reasons</h2>" + _table(["reason", "stage", "clips", "seconds"], reasons))
    bad = query(catalog, "SELECT input, detail FROM catalog WHERE stage = 'input' ORDER BY input")
    if bad:
        parts.append("<h2>Unreadable inputs</h2>" + _table(["input", "problem"], bad))
    cams = query(catalog, "SELECT camera_motion, count(*) FROM catalog WHERE status = 'accepted' GROUP BY 1 ORDER BY 2 DESC")
    parts.append("<h2>Camera motion of accepted clips</h2>" + _table(["camera", "clips"], cams))
    atomic_write_bytes(assets / "histograms.png", histograms(catalog))
    parts.append(f"<h2>Scores</h2><img src='{assets.name}/histograms.png'>")
    for status in ("accepted", "rejected"):
        png = contact_sheet(catalog, status)
        if png:
            atomic_write_bytes(assets / f"contact_{status}.png", png)
            parts.append(f"<h2>Contact sheet: {status}</h2><img src='{assets.name}/contact_{status}.png'>")
    style = "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style>"
    atomic_write_bytes(out, f"<html><head><meta charset='utf-8'>{style}</head><body>{''.join(parts)}</body></html>".encode())
    return out
