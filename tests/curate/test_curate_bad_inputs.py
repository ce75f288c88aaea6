"""Bad input becomes a catalog row with its reason; the run goes on and the summary counts it."""

import io

import av
import numpy as np
import pyarrow.parquet as pq
from curate_helpers import small_config

from worldsmith.curate.inputs import expand_inputs
from worldsmith.curate.run import curate
from worldsmith.video import encode_video, read_video


def _audio_only() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        t = np.arange(16000 * 2) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i:i + 1024]), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return buf.getvalue()


def _faststart(tmp_path, src) -> bytes:
    """Re-encode `src` with its index (moov) at the front, as streaming sites serve MP4."""
    frames = read_video(src)
    path = tmp_path / "faststart.mp4"
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    data = path.read_bytes()
    path.unlink()
    return data


def test_bad_inputs_become_rows_and_the_run_goes_on(tmp_path, small_inputs):
    rng = np.random.default_rng(0)
    good = (small_inputs / "b_shot.mp4").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    (bad / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (bad / "random.mp4").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    (bad / "audio.mp4").write_bytes(_audio_only())
    (bad / "single.mp4").write_bytes(encode_video(rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8), 25))
    (bad / "absurd.mp4").write_bytes(encode_video(rng.integers(0, 256, (10, 16, 1024, 3), dtype=np.uint8), 25))
    faststart = _faststart(tmp_path, small_inputs / "a_shots.mp4")
    (bad / "cut_faststart.mp4").write_bytes(faststart[: len(faststart) * 6 // 10])
    items, _ = expand_inputs([str(bad), str(small_inputs / "c_shot.mp4")])
    summary = curate(items, tmp_path / "out", small_config())
    rows = pq.read_table(tmp_path / "out" / "catalog.parquet").to_pylist()
    by_input = {}
    for r in rows:
        by_input.setdefault(r["input"].rsplit("/", 1)[-1], []).append(r)
    for name, words in {"zero.mp4": "empty", "random.mp4": "not a readable", "audio.mp4": "no video stream",
                        "absurd.mp4": "absurd dimensions"}.items():
        (row,) = by_input[name]
        assert row["reason"] == "bad_input" and words in row["detail"] and name in row["detail"], row
    # cut off before its index (moov at the end): unreadable
    (row,) = by_input["truncated.mp4"]
    assert row["reason"] == "bad_input" and "not a readable" in row["detail"]
    # cut off after a front index (faststart): the decodable part is curated, and a row says it was truncated
    cut = [r for r in by_input["cut_faststart.mp4"]]
    assert any(r["stage"] == "input" and "truncated" in r["detail"] for r in cut), cut
    assert any(r["stage"] != "input" for r in cut)
    (single,) = by_input["single.mp4"]
    assert single["reason"] == "too_short" and single["frames"] == 1
    assert any(r["status"] == "accepted" for r in by_input["c_shot.mp4"])
    assert summary["bad_inputs"] == 6 and summary["inputs"] == 8


def test_episode_dataset_input_carries_task_and_source(tmp_path):
    from worldsmith.data.lerobot import write_dataset
    from worldsmith.sources import generate

    root = tmp_path / "camera_ds"
    write_dataset(root, generate("camera", episodes=2, frames=40, size=64, seed=0), fps=10.0)
    items, _ = expand_inputs([str(tmp_path)])  # a parent folder: the dataset is found, its mp4s are not inputs
    assert [it.episode for it in items] == [0, 1]
    summary = curate(items, tmp_path / "out", small_config())
    rows = [r for r in pq.read_table(tmp_path / "out" / "catalog.parquet").to_pylist() if r["stage"] != "input"]
    assert summary["bad_inputs"] == 0 and rows
    for r in rows:
        assert r["episode"] in (0, 1) and r["source"] == "camera" and r["fps"] == 10.0
        if r["task"]:
            assert r["task"].rstrip(".") in r["caption"]
