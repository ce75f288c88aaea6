"""The planted-problem compilation: cuts found, and the right verdict for every planted segment."""

import pyarrow.parquet as pq


def _match(found, truth, tol=2):
    hit = sum(any(abs(f - t) <= tol for f in found) for t in truth)
    good = sum(any(abs(f - t) <= tol for t in truth) for f in found)
    return good / max(len(found), 1), hit / max(len(truth), 1)


def test_cut_precision_and_recall(synth, synth_run):
    _, gt = synth
    _, summary = synth_run
    (cuts,) = summary["cuts"].values()
    precision, recall = _match(cuts, gt["cuts"])
    assert precision >= 0.99 and recall >= 0.99, (cuts, gt["cuts"])


def test_each_planted_segment_gets_its_verdict(synth, synth_run):
    _, gt = synth
    out, _ = synth_run
    rows = [r for r in pq.read_table(out / "catalog.parquet").to_pylist() if r["stage"] != "input"]
    for seg in gt["segments"]:
        # the clips that lie mostly inside this segment
        mine = [r for r in rows if min(r["end"], seg["end"]) - max(r["start"], seg["start"]) > (r["end"] - r["start"]) / 2]
        assert mine, seg
        verdicts = {r["reason"] or "accept" for r in mine}
        if seg["expect"] == "duplicate":
            assert verdicts <= {"duplicate_exact", "duplicate_near", "duplicate_semantic"}, (seg, verdicts)
            originals = {r["dup_of"] for r in mine}
            first = [r["clip_id"] for r in rows if r["start"] < seg["start"] and r["status"] == "accepted"]
            assert originals <= set(first)
        else:
            assert verdicts == {seg["expect"]}, (seg, [(r["clip_id"], r["reason"], r["detail"]) for r in mine])
    pan = [r for r in rows if r["start"] >= gt["segments"][3]["start"] and r["end"] <= gt["segments"][3]["end"]]
    assert pan and all(r["camera_motion"] == "pan" for r in pan)


def test_every_clip_row_has_all_scores_and_accepted_ones_a_shard(synth_run):
    out, summary = synth_run
    rows = pq.read_table(out / "catalog.parquet").to_pylist()
    assert len(rows) == summary["clips"] + summary["bad_inputs"]
    for r in rows:
        for col in ("motion", "shake", "sharpness", "brightness", "colourfulness", "text_prob", "exact_hash", "caption"):
            assert r[col] is not None, (col, r["clip_id"])
        assert (r["shard"] is not None) == (r["status"] == "accepted")
        assert r["status"] == "accepted" or r["reason"]
