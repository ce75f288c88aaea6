"""worldsmith.video: probe, seek, resample, resize, rotation, variable frame rate, odd sizes, error paths."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from worldsmith.video import (
    VideoError,
    encode_video,
    iter_frames,
    probe,
    read_video,
    resize_frame,
    to_float,
    to_uint8,
    write_video,
    x264_options,
)

LEVEL0, STEP = 10, 7  # frame i is a flat grey of level LEVEL0 + STEP * i, readable after lossy coding


def counting_frames(n: int, h: int = 32, w: int = 48) -> np.ndarray:
    levels = (LEVEL0 + STEP * np.arange(n)) % 256
    return np.broadcast_to(levels.astype(np.uint8)[:, None, None, None], (n, h, w, 3)).copy()


def indices_of(frames: np.ndarray) -> list[int]:
    return np.round((frames.astype(np.float64).mean(axis=(1, 2, 3)) - LEVEL0) / STEP).astype(int).tolist()


def _encode(path, frames, rate, pts=None, gop=None, rotation=None, time_base=None):
    """Encode with PyAV directly (for what encode_video does not expose: pts, GOP, display rotation)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        tb = time_base or Fraction(1, rate)
        stream.time_base = tb
        if gop:
            stream.options = {"g": str(gop)}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts is not None else i), tb
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


def test_probe_fields(tmp_path):
    path = write_video(tmp_path / "a.mp4", counting_frames(20), fps=10)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (48, 32, 10.0, 20)
    assert info.duration == pytest.approx(2.0, abs=0.11)
    assert info.codec == "h264" and info.rotation == 0 and info.has_audio is False and info.path == str(path)
    assert set(info.to_dict()) >= {"width", "height", "fps", "duration", "frame_count", "codec"}
    assert probe(path.read_bytes()).frame_count == 20  # bytes in memory work too


def test_seek_equals_slice_of_full_read(tmp_path):
    path = _encode(tmp_path / "gop.mp4", counting_frames(33), rate=10, gop=8)  # keyframes every 8: a real seek
    full = read_video(path)
    assert indices_of(full) == list(range(33))
    for start, end in [(0, 5), (9, 17), (16, 17), (25, 33), (30, None)]:
        np.testing.assert_array_equal(read_video(path, start, end), full[start:end])
    with pytest.raises(VideoError, match="no frames in range"):
        read_video(path, 40, 45)


def test_fps_resampling_down_and_up(tmp_path):
    fast = write_video(tmp_path / "30.mp4", counting_frames(30), fps=30)
    down = read_video(fast, fps=10)
    assert indices_of(down) == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]
    np.testing.assert_array_equal(read_video(fast, 2, 5, fps=10), down[2:5])
    slow = write_video(tmp_path / "10.mp4", counting_frames(10), fps=10)
    up = read_video(slow, fps=30)
    assert indices_of(up) == [i // 3 for i in range(30)]
    assert indices_of(read_video(slow, 4, 9, fps=25)) == [1, 2, 2, 2, 3]  # t = 0.16, 0.2, 0.24, 0.28, 0.32 s


def test_resize_modes():
    img = np.full((32, 48, 3), 200, np.uint8)
    img[:, :8] = 50  # a dark left border that crop removes and stretch keeps
    crop = resize_frame(img, 16, "crop")
    assert crop.shape == (16, 16, 3) and crop.min() > 150
    pad = resize_frame(img, 16, "pad")
    assert pad.shape == (16, 16, 3) and pad[0].max() == 0 and pad[-1].max() == 0 and pad[8, 8].min() > 150
    stretch = resize_frame(img, (20, 10), "stretch")
    assert stretch.shape == (20, 10, 3) and stretch[:, 0].max() < 120
    assert resize_frame(img, (32, 48)) is img
    with pytest.raises(ValueError, match="unknown resize mode"):
        resize_frame(img, 16, "zoom")
    frames = np.stack([img] * 3)
    assert read_video(encode_video(frames, 10), size=(24, 12), mode="pad").shape == (3, 24, 12, 3)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_rotation_is_honoured(tmp_path, rotation):
    frames = np.zeros((4, 32, 48, 3), np.uint8)
    frames[:, :8, :8] = 255  # a white marker in the top-left corner of the coded picture
    path = _encode(tmp_path / f"rot{rotation}.mp4", frames, rate=10, rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.height, info.width) == ((48, 32) if rotation in (90, 270) else (32, 48))
    out = read_video(path)
    assert out.shape[1:3] == (info.height, info.width)
    corners = {"tl": out[0, :8, :8], "tr": out[0, :8, -8:], "bl": out[0, -8:, :8], "br": out[0, -8:, -8:]}
    # Rotating the picture counter-clockwise by 90 moves the top-left corner to the bottom-left.
    expected = {90: "bl", 180: "br", 270: "tr"}[rotation]
    assert {k for k, v in corners.items() if v.mean() > 128} == {expected}


def test_variable_frame_rate_comes_out_at_a_constant_rate(tmp_path):
    # Six frames at irregular times (in 1/100 s): 0, 0.1, 0.2, 0.5, 0.6, 1.0 s.
    pts = [0, 10, 20, 50, 60, 100]
    path = _encode(tmp_path / "vfr.mp4", counting_frames(6), rate=10, pts=pts, time_base=Fraction(1, 100))
    out = read_video(path, 0, 10, fps=10)
    # Each 0.1 s slot shows the latest frame at or before it.
    assert indices_of(out) == [0, 1, 2, 2, 2, 3, 4, 4, 4, 4]
    assert indices_of(np.stack(list(iter_frames(path, 3, 6, fps=10)))) == [2, 2, 3]


def test_odd_sizes_are_written_and_read(tmp_path):
    frames = counting_frames(5, 33, 47)
    path = write_video(tmp_path / "odd.mp4", frames, fps=10)
    out = read_video(path)
    assert out.shape == (5, 34, 48, 3)  # yuv420p needs even sides: one replicated row and column
    assert indices_of(out[:, :33, :47]) == list(range(5))
    assert read_video(path, size=(15, 21), mode="stretch").shape == (5, 15, 21, 3)


def test_encoding_is_deterministic_and_float_round_trip():
    frames = counting_frames(6)
    assert encode_video(frames, 10) == encode_video(frames, 10)
    x = to_float(frames)
    assert x.shape == (6, 3, 32, 48) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(to_uint8(x), frames)


@pytest.mark.parametrize("width, tree_off",
                         [(32, False), (48, True), (64, False), (80, True), (176, True), (256, False)])
def test_x264_macroblock_tree_is_off_exactly_for_odd_macroblock_widths(width, tree_off):
    assert (x264_options(width).get("x264-params") == "mbtree=0") is tree_off


def _audio_only(path):
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(16000) / 10.0) * 0.3).astype(np.float32)[None]
        for i in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i:i + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return path


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file"),
    ("zero", "empty file (0 bytes)"),
    ("truncated", "not a readable video container"),
    ("random", "not a readable video container"),
    ("audio", "no video stream (has: audio)"),
    ("directory", "is a directory"),
])
def test_unreadable_files_raise_one_error_naming_the_file(tmp_path, case, problem):
    path = tmp_path / f"{case}.mp4"
    if case == "zero":
        path.write_bytes(b"")
    elif case == "truncated":
        data = encode_video(counting_frames(20), 10)
        path.write_bytes(data[: len(data) // 2])
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "audio":
        _audio_only(path)
    elif case == "directory":
        path.mkdir()
    for call in (probe, read_video, lambda p: list(iter_frames(p))):
        with pytest.raises(VideoError) as err:
            call(path)
        assert str(err.value).startswith(f"{path}: ") and problem in str(err.value)
        assert err.value.source == str(path)


def test_truncated_stream_with_index_first_reads_what_is_there_or_fails_cleanly(tmp_path):
    # With the index (moov) up front, a cut file still opens; decoding must not crash with anything but VideoError.
    frames = counting_frames(30)
    buf = tmp_path / "fast.mp4"
    with av.open(str(buf), "w", format="mp4", options={"movflags": "faststart"}) as out:
        s = out.add_stream("libx264", rate=10)
        s.height, s.width, s.pix_fmt = 32, 48, "yuv420p"
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(buf.read_bytes()[: buf.stat().st_size // 2])
    try:
        got = read_video(cut)
    except VideoError as e:
        assert str(e).startswith(str(cut))
    else:
        assert 0 < len(got) < 30 and indices_of(got) == list(range(len(got)))
