"""Videos source: a folder of files cut into action-less episodes; unreadable files are reported and skipped."""

import os
import shutil

import numpy as np
import pytest

from worldsmith.sources import generate, videos
from worldsmith.video import read_video

SAMPLES = videos.sample_folder()
CARPHONE = os.path.join(SAMPLES, "carphone_pristine.mp4")  # 176x144, 120 frames at 29.97 fps


@pytest.fixture
def folder(tmp_path):
    shutil.copy(CARPHONE, tmp_path / "carphone_pristine.mp4")
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "notes.txt").write_text("not a video, ignored")
    return tmp_path


def test_bad_file_is_reported_by_name_and_skipped(folder):
    skipped = []
    with pytest.warns(videos.SkippedVideoWarning, match="broken.mp4"):
        eps = list(generate("videos", 20, 16, folder=str(folder), skipped=skipped))
    assert len(eps) == 120 // 16
    assert all(ep.meta["source.name"] == "carphone_pristine.mp4" for ep in eps)
    assert [os.path.basename(r["file"]) for r in skipped] == ["broken.mp4"]
    assert skipped[0]["problem"]
    assert [os.path.basename(r["file"]) for r in eps[0].meta["skipped_files"]] == ["broken.mp4"]


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_columns_and_task(folder, size):
    with pytest.warns(videos.SkippedVideoWarning):
        eps = list(generate("videos", 2, 8, size=size, folder=folder))
    ep = eps[1]
    assert ep.frames.shape == (8, size, size, 3) and ep.frames.dtype == np.uint8
    assert ep.task == "a video of carphone pristine"
    assert ep.fps == pytest.approx(30000 / 1001)
    assert ep.columns["source.frame_index"].dtype == np.int64
    assert ep.columns["source.frame_index"].tolist() == list(range(8, 16))  # second window
    assert ep.columns["source.timestamp"].dtype == np.float32


def test_frames_change_and_resampling_skips_source_frames(folder):
    with pytest.warns(videos.SkippedVideoWarning):
        (ep,) = list(generate("videos", 1, 10, folder=folder, fps=10))
    assert ep.fps == 10
    idx = ep.columns["source.frame_index"]
    assert (np.diff(idx) >= 2).all() and idx[-1] == pytest.approx(27, abs=1)  # 29.97 fps -> 10 fps
    assert np.abs(np.diff(ep.frames.astype(np.int16), axis=0)).mean() > 1.0


def test_default_folder_uses_the_sample_videos_round_robin_and_is_deterministic():
    a = list(generate("videos", 3, 6, size=32))
    b = list(generate("videos", 3, 6, size=32))
    assert sorted(ep.meta["source.name"] for ep in a) == sorted(videos.SAMPLE_FILES)
    # one rate for the whole run: carphone (29.97 fps) is resampled to bikes' 25 fps
    assert {ep.fps for ep in a} == {25.0}
    carphone = next(ep for ep in a if ep.meta["source.name"] == "carphone_pristine.mp4")
    idx = carphone.columns["source.frame_index"]
    assert idx[0] == 0 and idx[-1] in (5, 6) and (np.diff(idx) >= 1).all() and (np.diff(idx) == 2).sum() == 1
    native = read_video(CARPHONE, 0, 8, size=32)  # the column names the source frame each output frame shows
    for i, j in enumerate(idx):
        assert np.array_equal(carphone.frames[i], native[j]), (i, j)
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes()


def test_short_file_and_bad_folders(tmp_path):
    shutil.copy(CARPHONE, tmp_path / "clip.mp4")
    skipped = []
    with pytest.warns(videos.SkippedVideoWarning, match="clip.mp4: shorter than one episode"):
        with pytest.raises(ValueError, match="no video yields an episode of 500 frames.*clip.mp4"):
            list(generate("videos", 1, 500, folder=tmp_path, skipped=skipped))
    assert [os.path.basename(r["file"]) for r in skipped] == ["clip.mp4"]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list(generate("videos", 1, 4, folder=tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no video files"):
        list(generate("videos", 1, 4, folder=empty))


def test_zoom_tiles_cover_the_upscaled_centre_square(folder):
    with pytest.warns(videos.SkippedVideoWarning):
        eps = list(generate("videos", 5, 8, size=32, folder=folder, zooms=[1, 2]))
    assert [(ep.meta["zoom"], ep.meta["tile"]) for ep in eps] == [(1, 0), (2, 0), (2, 1), (2, 2), (2, 3)]
    whole = read_video(CARPHONE, start=0, end=8, size=64, mode="crop")
    assert np.array_equal(eps[1].frames, whole[:, :32, :32]) and np.array_equal(eps[4].frames, whole[:, 32:, 32:])
    assert all(ep.frames.shape == (8, 32, 32, 3) for ep in eps)
    with pytest.raises(ValueError, match="zooms"):
        list(generate("videos", 1, 8, folder=folder, zooms=[0]))
