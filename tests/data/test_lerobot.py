"""LeRobot v3.0 write/read round trips, file roll-over, random access, v2.1 read, bad folders."""

from __future__ import annotations

import hashlib
import json
import shutil

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from episode_fixtures import episodes, frame_level_index, make_episode, psnr  # noqa: F401 (episodes is a fixture)
from worldsmith.data.episode import VIDEO_KEY, Episode
from worldsmith.data.lerobot import DatasetError, DatasetWriter, LeRobotDataset, write_dataset
from worldsmith.data.mp4 import StreamingMp4
from worldsmith.video import write_video


def _assert_same_columns(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for name, col in want.items():
        assert got[name].dtype == col.dtype, name
        assert got[name].shape == col.shape, name
        np.testing.assert_array_equal(got[name], col, err_msg=name)


def test_v3_round_trip(tmp_path, episodes):
    root = write_dataset(tmp_path / "ds", episodes, fps=10)
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3 and info["total_frames"] == 39 and info["total_tasks"] == 2
    assert info["features"][VIDEO_KEY]["dtype"] == "video" and info["features"][VIDEO_KEY]["shape"] == [32, 48, 3]
    assert info["features"]["camera.pose"] == {"dtype": "float32", "shape": [4, 4], "names": None}
    assert info["features"]["step"]["shape"] == [1] and info["features"]["done"]["dtype"] == "bool"
    assert (root / "data/chunk-000/file-000.parquet").is_file()
    assert (root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4").is_file()
    # Episode metadata carries the v3 fields that locate rows and frames.
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["length"] for r in rows] == [12, 20, 7]
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 12), (12, 32), (32, 39)]
    assert [r[f"videos/{VIDEO_KEY}/from_timestamp"] for r in rows] == [0.0, 1.2, 3.2]
    assert rows[1]["tasks"] == ["task 1"]
    # Per-frame bookkeeping columns as LeRobot has them.
    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert data.column_names[:5] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert data.column("index").to_pylist() == list(range(39))
    assert pa.types.is_fixed_size_list(data.schema.field("action").type)

    ds = LeRobotDataset(root)
    assert (ds.num_episodes, ds.lengths, ds.fps) == (3, [12, 20, 7], 10.0)
    assert ds.tasks == ["task 0", "task 1", "task 0"]
    for k, want in enumerate(episodes):
        got = ds.episode(k)
        _assert_same_columns(got.columns, want.columns)
        assert got.frames.shape == want.frames.shape
        assert psnr(got.frames, want.frames) >= 35.0
        assert got.task == want.task and got.meta == want.meta and got.fps == 10.0
    stats = json.loads((root / "meta/stats.json").read_text())
    all_actions = np.concatenate([e.columns["action"] for e in episodes])
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(0), rtol=1e-5, atol=1e-6)
    assert stats["action"]["count"] == [39]


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p"])
def test_odd_frame_sizes_round_trip(tmp_path, pix_fmt):
    eps = [make_episode(e, 6, height=33, width=47) for e in range(2)]
    ds = LeRobotDataset(write_dataset(tmp_path / "odd", eps, fps=10, pix_fmt=pix_fmt))
    assert ds.features[VIDEO_KEY]["info"]["video.pix_fmt"] == pix_fmt
    for k in range(2):
        got = ds.frames(k)
        assert got.shape == (6, 33, 47, 3)
        np.testing.assert_array_equal(frame_level_index(got), np.arange(6))


def test_sharp_saturated_frames_stay_above_35_db(tmp_path):
    # Rendered scenes have 1-pixel colour edges (a red cube on a checkered table); 4:2:0 chroma would blur them.
    T, yy, xx = 8, *np.mgrid[0:64, 0:64]
    frames = np.zeros((T, 64, 64, 3), np.uint8)
    for t in range(T):
        checker = ((yy // 5 + (xx + t) // 5) % 2).astype(np.uint8)
        frames[t, ..., 1] = 60 + 120 * checker
        frames[t, ..., 2] = 200 - 120 * checker
        frames[t, 20 + t:33 + t, 17:30] = (230, 20, 20)
    ep = Episode(frames, {}, "red cube", 10.0)
    got = LeRobotDataset(write_dataset(tmp_path / "sharp", [ep], fps=10)).frames(0)
    assert psnr(got, frames) >= 35.0


def test_rollover_across_files_and_chunks(tmp_path):
    eps = [make_episode(e, 8 + e) for e in range(7)]
    root = tmp_path / "roll"
    with DatasetWriter(root, fps=10, data_file_mb=0.001, video_file_mb=0.001, chunks_size=2) as w:
        for e in eps:
            w.add(e)
    data_files = sorted(p.relative_to(root).as_posix() for p in root.glob("data/*/*.parquet"))
    video_files = sorted(p.relative_to(root).as_posix() for p in root.glob("videos/*/*/*.mp4"))
    assert len(data_files) >= 3 and "data/chunk-001/file-000.parquet" in data_files
    assert len(video_files) >= 2
    assert not list(root.rglob(".*tmp*")), "temp files left behind"
    ds = LeRobotDataset(root)
    for k, want in enumerate(eps):
        _assert_same_columns(ds.columns(k), want.columns)
        np.testing.assert_array_equal(frame_level_index(ds.frames(k)), np.arange(want.length))


def test_random_access_by_episode_and_frame_range(tmp_path, episodes):
    root = write_dataset(tmp_path / "ds", episodes, fps=10)
    ds = LeRobotDataset(root)
    full = ds.frames(1)
    part = ds.frames(1, 5, 13)
    np.testing.assert_array_equal(part, full[5:13])
    np.testing.assert_array_equal(frame_level_index(part), np.arange(5, 13))
    cols = ds.columns(1, 5, 13, names=["action"])
    np.testing.assert_array_equal(cols["action"], episodes[1].columns["action"][5:13])
    np.testing.assert_array_equal(ds.frames(2, 6, 7), ds.frames(2)[6:7])
    # Each episode starts on a keyframe, so seeking to it never decodes the episode before it.
    mp4 = root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4"
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        key_times = {round(float(p.pts * s.time_base), 3) for p in c.demux(s) if p.is_keyframe and p.pts is not None}
    assert {0.0, 1.2, 3.2} <= key_times
    with pytest.raises(DatasetError, match="bad frame range"):
        ds.frames(1, 10, 25)
    with pytest.raises(DatasetError, match="no episode 3"):
        ds.columns(3)


def test_same_episodes_give_same_bytes(tmp_path, episodes):
    a = write_dataset(tmp_path / "a", episodes, fps=10)
    b = write_dataset(tmp_path / "b", episodes, fps=10)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_odd_macroblock_widths_encode_to_the_same_bytes_every_time(tmp_path):
    # x264's macroblock tree read leftover stack memory at 48 px wide (3 macroblocks): 300 encodes of these
    # frames in one process gave 7 different files before `video.x264_options` turned the tree off there. How
    # many differ depends on what ran before, so one repeat is not enough.
    episodes = [make_episode(e, 12 + e) for e in range(3)]
    digests = set()
    for _ in range(100):
        mp4 = StreamingMp4(tmp_path / "x.mp4", 10, 32, 48)
        for episode in episodes:
            mp4.append(episode.frames)
        digests.add(hashlib.sha256(mp4.close().read_bytes()).hexdigest())
    assert len(digests) == 1


def test_crashed_write_leaves_no_dataset(tmp_path, episodes):
    root = tmp_path / "crash"
    with pytest.raises(RuntimeError):
        with DatasetWriter(root, fps=10) as w:
            w.add(episodes[0])
            w.add(episodes[1])
            raise RuntimeError("generator died")
    assert not (root / "meta/info.json").exists()
    assert not list(root.rglob(".*tmp*"))
    with pytest.raises(DatasetError, match=r"crash: not a LeRobot dataset: no meta/info.json"):
        LeRobotDataset(root)


def test_writer_rejects_inconsistent_episodes(tmp_path, episodes):
    w = DatasetWriter(tmp_path / "w", fps=10)
    w.add(episodes[0])
    other_size = make_episode(1, 5, height=16, width=16)
    with pytest.raises(DatasetError, match="frames are 16x16"):
        w.add(other_size)
    missing = make_episode(1, 5)
    del missing.columns["reward"]
    with pytest.raises(DatasetError, match=r"columns differ .*'reward'"):
        w.add(missing)
    with pytest.raises(DatasetError, match="at 20.0 fps"):
        w.add(make_episode(1, 5, fps=20.0))
    w.abort()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(DatasetError, match="not an empty folder"):
        DatasetWriter(tmp_path / "full", fps=10)
    with pytest.raises(DatasetError, match="no episodes"):
        DatasetWriter(tmp_path / "empty", fps=10).close()


def _write_v21(root, episodes, fps=10.0):
    """A LeRobot v2.1 dataset as the lerobot package writes it: one parquet and one mp4 per episode."""
    tasks = {}
    for e in episodes:
        tasks.setdefault(e.task, len(tasks))
    features = {
        "observation.images.top": {"dtype": "video", "shape": [32, 48, 3], "names": ["height", "width", "channel"]},
        "action": {"dtype": "float32", "shape": [7], "names": None},
        "step": {"dtype": "int64", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    }
    info = {"codebase_version": "v2.1", "fps": fps, "chunks_size": 1000, "total_episodes": len(episodes),
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "features": features}
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                                   for t, i in tasks.items()))
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": k, "tasks": [e.task], "length": e.length}) + "\n" for k, e in enumerate(episodes)))
    index = 0
    for k, e in enumerate(episodes):
        T = e.length
        table = pa.table({
            # HF datasets writes Sequence features as variable-size lists: the reader must cope.
            "action": pa.array([list(map(float, row)) for row in e.columns["action"]], type=pa.list_(pa.float32())),
            "step": pa.array(e.columns["step"]),
            "timestamp": pa.array(np.arange(T, dtype=np.float32) / fps),
            "frame_index": pa.array(np.arange(T)),
            "episode_index": pa.array(np.full(T, k)),
            "index": pa.array(np.arange(index, index + T)),
            "task_index": pa.array(np.full(T, tasks[e.task])),
        })
        index += T
        (root / "data/chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / f"data/chunk-000/episode_{k:06d}.parquet")
        write_video(root / f"videos/chunk-000/observation.images.top/episode_{k:06d}.mp4", e.frames, fps)


def test_reads_v21_layout(tmp_path, episodes):
    root = tmp_path / "v21"
    _write_v21(root, episodes)
    ds = LeRobotDataset(root)
    assert ds.version == "v2.1" and ds.num_episodes == 3 and ds.lengths == [12, 20, 7]
    assert ds.video_key == "observation.images.top" and ds.column_names == ["action", "step"]
    assert ds.task_list == ["task 0", "task 1"] and ds.tasks == ["task 0", "task 1", "task 0"]
    for k, want in enumerate(episodes):
        got = ds.episode(k)
        np.testing.assert_array_equal(got.columns["action"], want.columns["action"])
        np.testing.assert_array_equal(got.columns["step"], want.columns["step"])
        assert got.columns["action"].dtype == np.float32
        assert psnr(got.frames, want.frames) >= 35.0
    np.testing.assert_array_equal(frame_level_index(ds.frames(1, 3, 9)), np.arange(3, 9))


def _break(root, how):
    if how == "no info":
        (root / "meta/info.json").unlink()
    elif how == "bad json":
        (root / "meta/info.json").write_text("{ not json")
    elif how == "old version":
        info = json.loads((root / "meta/info.json").read_text())
        info["codebase_version"] = "v1.6"
        (root / "meta/info.json").write_text(json.dumps(info))
    elif how == "no fps":
        info = json.loads((root / "meta/info.json").read_text())
        del info["fps"]
        (root / "meta/info.json").write_text(json.dumps(info))
    elif how == "missing data":
        (root / "data/chunk-000/file-000.parquet").unlink()
    elif how == "missing video":
        (root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4").unlink()
    elif how == "no episodes meta":
        shutil.rmtree(root / "meta/episodes")
    elif how == "corrupt tasks":
        (root / "meta/tasks.parquet").write_bytes(b"PAR1 garbage")
    elif how == "count mismatch":
        info = json.loads((root / "meta/info.json").read_text())
        info["total_episodes"] = 5
        (root / "meta/info.json").write_text(json.dumps(info))


@pytest.mark.parametrize("how, problem", [
    ("no info", "no meta/info.json"),
    ("bad json", "not valid JSON"),
    ("old version", "unsupported codebase_version 'v1.6'"),
    ("no fps", "lacks 'fps'"),
    ("missing data", "missing file data/chunk-000/file-000.parquet"),
    ("missing video", "missing file videos/observation.image"),
    ("no episodes meta", "holds no episode metadata"),
    ("corrupt tasks", "not a readable parquet file"),
    ("count mismatch", "says 5 episodes"),
])
def test_bad_folders_raise_one_clear_error(tmp_path, episodes, how, problem):
    root = write_dataset(tmp_path / "ds", episodes[:1], fps=10)
    _break(root, how)
    with pytest.raises(DatasetError) as err:
        LeRobotDataset(root)
    assert str(root) in str(err.value) and problem in str(err.value)


def test_not_a_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such folder"):
        LeRobotDataset(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="is a file"):
        LeRobotDataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: not a LeRobot dataset"):
        LeRobotDataset(tmp_path / "empty")


def test_truncated_video_is_a_dataset_error(tmp_path, episodes):
    root = write_dataset(tmp_path / "ds", episodes, fps=10)
    mp4 = root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4"
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 3])
    with pytest.raises(DatasetError, match="file-000.mp4"):
        LeRobotDataset(root).frames(2)


def test_episode_scalar_and_string_columns(tmp_path):
    T = 4
    ep = Episode(np.zeros((T, 16, 16, 3), np.uint8),
                 {"label": np.array(["a", "b", "c", "d"], dtype=object), "x": np.arange(T, dtype=np.int32)},
                 task="t", fps=5.0)
    ds = LeRobotDataset(write_dataset(tmp_path / "s", [ep], fps=5))
    cols = ds.columns(0)
    assert cols["label"].tolist() == ["a", "b", "c", "d"] and ds.features["label"]["dtype"] == "string"
    assert cols["x"].dtype == np.int32 and cols["x"].shape == (T,)
