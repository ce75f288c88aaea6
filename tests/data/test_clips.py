"""ClipDataset: frame/column alignment in windows, split by episode, mixed roots, decode cache, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from episode_fixtures import LEVEL0, STEP, make_episode
from worldsmith.data.clips import ClipDataset, split_of
from worldsmith.data.lerobot import DatasetError, write_dataset
from worldsmith.video import to_uint8, write_video


def _index_from_video(video: torch.Tensor) -> np.ndarray:
    frames = to_uint8(video.numpy())
    level = frames[:, : frames.shape[1] // 2].astype(np.float64).mean(axis=(1, 2, 3))
    return np.round((level - LEVEL0) / STEP).astype(int)


def test_windows_align_frames_and_columns(tmp_path):
    lengths = [11, 16, 9]
    root = write_dataset(tmp_path / "align", [make_episode(e, n) for e, n in enumerate(lengths)], fps=10)
    T, stride = 5, 3
    ds = ClipDataset([root], clip_frames=T, stride=stride, split="all")
    assert len(ds) == sum((n - T) // stride + 1 for n in lengths)
    assert ds.columns == ["action", "observation.state", "camera.pose", "step", "done", "reward"]
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        k, start = item["episode_index"], item["frame_index"]
        seen.add((k, start))
        assert item["video"].shape == (T, 3, 32, 48) and item["video"].dtype == torch.float32
        assert -1.0 <= item["video"].min() and item["video"].max() <= 1.0
        # The frame's own picture, the recorded action and the window position all agree, frame by frame.
        expected = np.arange(start, start + T)
        np.testing.assert_array_equal(_index_from_video(item["video"]), expected)
        np.testing.assert_array_equal(item["action"][:, 0].numpy(), expected)
        assert (item["action"][:, 1] == k).all()
        assert item["step"].shape == (T,) and item["camera.pose"].shape == (T, 4, 4) and item["reward"].shape == (T, 1)
        assert item["task"] == f"task {k % 2}"
    assert seen == {(k, s) for k, n in enumerate(lengths) for s in range(0, n - T + 1, stride)}


def test_split_is_by_episode_without_leakage(tmp_path):
    root = write_dataset(tmp_path / "split", [make_episode(e, 6, height=16, width=16) for e in range(30)], fps=10)
    kw = dict(clip_frames=3, stride=1, val_fraction=0.2, test_fraction=0.2, seed=7)
    parts = {s: ClipDataset([root], split=s, **kw) for s in ("train", "val", "test", "all")}
    episodes = {s: {k for _, k in d.episodes} for s, d in parts.items()}
    assert episodes["train"] & episodes["val"] == set() and episodes["train"] & episodes["test"] == set()
    assert episodes["val"] & episodes["test"] == set()
    assert episodes["train"] | episodes["val"] | episodes["test"] == episodes["all"] == set(range(30))
    assert all(episodes[s] for s in ("train", "val", "test"))
    for s in ("train", "val", "test"):  # every window of a split comes from that split's episodes
        assert {int(k) for k in parts[s]._windows[:, 1]} == episodes[s]
        assert len(parts[s]) == 4 * len(episodes[s])
    again = ClipDataset([root], split="val", **kw)
    assert {k for _, k in again.episodes} == episodes["val"]  # deterministic
    other_seed = ClipDataset([root], split="val", **{**kw, "seed": 8})
    assert {k for _, k in other_seed.episodes} != episodes["val"]


def test_split_fractions_and_stability():
    counts = {"train": 0, "val": 0, "test": 0}
    for k in range(20000):
        counts[split_of("robot", k, 0.1, 0.05)] += 1
    assert abs(counts["val"] / 20000 - 0.1) < 0.01 and abs(counts["test"] / 20000 - 0.05) < 0.01
    # An episode keeps its split however many episodes the dataset has: the hash sees only (seed, name, index).
    assert split_of("robot", 123, 0.1, 0.05) == split_of("robot", 123, 0.1, 0.05)
    assert split_of("robot", 5, 0.0, 0.0) == "train"


def test_mixed_roots_and_video_folder(tmp_path):
    root = write_dataset(tmp_path / "robot", [make_episode(e, 10) for e in range(2)], fps=10)
    videos = tmp_path / "clips"
    videos.mkdir()
    for i in range(2):
        frames = np.full((12, 40, 60, 3), 30 + 50 * i, np.uint8)
        write_video(videos / f"v{i}.mp4", frames, fps=10)
    (videos / "broken.mp4").write_bytes(b"\x00not a video" * 10)
    ds = ClipDataset([root, videos], clip_frames=4, stride=4, split="all", size=24)
    assert ds.columns == []  # the video folder has no columns: only the common ones are kept
    assert len(ds.skipped) == 1 and "broken.mp4" in ds.skipped[0]
    assert len(ds) == 2 * 2 + 2 * 3
    loader = torch.utils.data.DataLoader(ds, batch_size=len(ds))
    batch = next(iter(loader))
    assert batch["video"].shape == (len(ds), 4, 3, 24, 24)
    assert sorted(set(batch["dataset"])) == ["clips", "robot"]
    with pytest.raises(DatasetError, match=r"clips: no column\(s\) \['action'\]"):
        ClipDataset([root, videos], clip_frames=4, columns=["action"], split="all")


def test_decoded_episodes_are_cached(tmp_path):
    root = write_dataset(tmp_path / "cache", [make_episode(e, 12) for e in range(3)], fps=10)
    ds = ClipDataset([root], clip_frames=4, stride=1, split="all", cache_episodes=2)
    source = ds.sources[0]
    calls = []
    real_load = source.load
    source.load = lambda k, names: calls.append(k) or real_load(k, names)
    for i in range(len(ds)):  # windows come episode by episode: one decode per episode
        ds[i]
    assert calls == [0, 1, 2]
    ds[0]  # episode 0 was evicted (capacity 2) and is decoded again; episode 2 stays cached
    ds[len(ds) - 1]
    assert calls == [0, 1, 2, 0]


def test_preload_decodes_each_episode_once_and_serves_the_same_items(tmp_path):
    root = write_dataset(tmp_path / "pre", [make_episode(e, 12) for e in range(3)], fps=10)
    lazy = ClipDataset([root], clip_frames=4, stride=1, split="all", cache_episodes=1)
    eager = ClipDataset([root], clip_frames=4, stride=1, split="all", cache_episodes=1, preload=True)
    calls = []
    real_load = eager.sources[0].load
    eager.sources[0].load = lambda k, names: calls.append(k) or real_load(k, names)
    order = np.random.default_rng(0).permutation(len(eager))  # random access, as a trainer draws windows
    for i in order:
        a, b = lazy[int(i)], eager[int(i)]
        assert torch.equal(a["video"], b["video"]) and a["frame_index"] == b["frame_index"]
    assert calls == []  # everything was decoded at construction
    assert eager.preload() == 3 * 12 * 32 * 48 * 3  # bytes held: uint8 frames of three 12-frame 32x48 episodes


def test_clip_dataset_errors(tmp_path):
    root = write_dataset(tmp_path / "e", [make_episode(0, 6)], fps=10)
    with pytest.raises(ValueError, match="split must be"):
        ClipDataset([root], split="dev")
    with pytest.raises(DatasetError, match=r"no column\(s\) \['nope'\]"):
        ClipDataset([root], columns=["nope"], split="all")
    with pytest.raises(DatasetError, match="missing: no such folder"):
        ClipDataset([tmp_path / "missing"])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match="holds no readable video files"):
        ClipDataset([tmp_path / "nothing"])
    assert len(ClipDataset([root], clip_frames=7, split="all")) == 0  # episode shorter than a clip
