"""The report, the CLI's error paths, and reading curated shards back for training."""

import duckdb
from curate_helpers import frames_ok
from typer.testing import CliRunner

from worldsmith.cli import app
from worldsmith.curate.dataset import ClipShardDataset, iter_shard_clips
from worldsmith.curate.report import funnel, make_report


def test_report_funnel_and_figures(small_clean_run, tmp_path):
    out = make_report(small_clean_run, tmp_path / "report.html")
    text = out.read_text()
    assert "Funnel" in text and "Rejection reasons" in text
    assets = tmp_path / "report_files"
    for name in ("histograms.png", "contact_accepted.png"):
        assert (assets / name).read_bytes()[:4] == b"\x89PNG"
    rows = funnel(small_clean_run / "catalog.parquet")
    accepted = duckdb.sql(f"SELECT count(*) FROM '{small_clean_run / 'catalog.parquet'}' WHERE status='accepted'").fetchall()[0][0]
    assert rows[-1][1] == accepted
    counts = [n for _, n in rows[1:]]
    assert counts == sorted(counts, reverse=True)


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["curate", "run", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "error:" in res.output and "nothing.mp4" in res.output
    res = runner.invoke(app, ["curate", "run", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "filters.nope=1"])
    assert res.exit_code != 0 and "error:" in res.output and "nope" in res.output
    res = runner.invoke(app, ["curate", "report", str(tmp_path)])
    assert res.exit_code != 0 and "no catalog.parquet" in res.output


def test_curate_help_has_examples():
    runner = CliRunner()
    for verb in ("run", "synth", "report", "train-text-detector"):
        res = runner.invoke(app, ["curate", verb, "--help"])
        assert res.exit_code == 0 and f"Example: worldsmith curate {verb}" in res.output, verb


def test_shards_feed_trainers(small_clean_run):
    clips = list(iter_shard_clips(small_clean_run, frames=8, size=32))
    assert clips
    for c in clips:
        assert c["video"].shape == (8, 3, 32, 32) and frames_ok(c["video"]) and isinstance(c["caption"], str)
        assert c["caption"].startswith("A ")
    ds = ClipShardDataset(small_clean_run / "shards", frames=8, size=32)
    assert len(ds) == len(clips) and tuple(ds[0]["video"].shape) == (8, 3, 32, 32)


def test_shards_are_plain_webdataset(small_clean_run):
    import webdataset as wds

    tars = sorted(str(p) for p in (small_clean_run / "shards").rglob("*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    assert samples and all({"mp4", "json", "__key__"} <= set(s) for s in samples)


def test_curated_run_folder_feeds_the_trainers_clip_dataset(small_clean_run):
    """`--data CURATED_RUN` works for the tokenizer and world-model trainers: ClipDataset reads the shards."""
    from worldsmith.data.clips import ClipDataset

    n_clips = len(list(iter_shard_clips(small_clean_run)))
    ds = ClipDataset([small_clean_run], clip_frames=5, stride=4, split="all", size=32)
    assert len(ds) >= n_clips > 0
    item = ds[0]
    assert tuple(item["video"].shape) == (5, 3, 32, 32) and frames_ok(item["video"].numpy())
    assert item["task"].startswith("A ")  # the template caption becomes the task text
