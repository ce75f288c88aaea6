import numpy as np

from worldsmith.curate.config import SplitConfig
from worldsmith.curate.split import ShotSplitter, detect_cuts
from worldsmith.video import read_video

from curate_helpers import sample


def test_bikes_hard_cuts_within_two_frames():
    frames = read_video(sample("bikes"))
    cuts = detect_cuts(frames, SplitConfig(), fps=25.0)
    truth = [30, 76, 137, 187, 242]
    assert len(cuts) == len(truth)
    for c, t in zip(cuts, truth):
        assert abs(c - t) <= 2, (cuts, truth)


def _spans(lengths, cfg):
    """Feed flat-colour shots of the given lengths; return the clip spans."""
    rng = np.random.default_rng(0)
    splitter = ShotSplitter(cfg, fps=25.0)
    spans = []
    for n in lengths:
        colour = rng.integers(0, 256, 3, dtype=np.uint8)
        for _ in range(n):
            img = np.empty((18, 32, 3), np.uint8)
            img[:] = colour
            img[:9, :16] = 255 - colour  # some structure, constant within the shot
            spans += splitter.feed(img)
    spans += splitter.finish()
    return splitter.cuts, spans


def test_long_shots_become_windows_and_cuts_are_trimmed():
    cfg = SplitConfig(max_frames=20, min_frames=5, trim_frames=1, min_shot_frames=4)
    cuts, spans = _spans([50, 12], cfg)
    assert cuts == [50]
    got = [(s.start, s.end) for s in spans]
    # shot 0: windows of 20 from 0, the last trimmed before the cut at 50; shot 1 starts after the trim
    assert got == [(0, 20), (20, 40), (40, 49), (51, 62)]
    assert all(s.end - s.start <= cfg.max_frames for s in spans)


def test_memory_is_bounded_by_the_window_not_the_video(tmp_path):
    from worldsmith.curate.config import CurateConfig
    from worldsmith.curate.inputs import make_item
    from worldsmith.curate.pipeline import process_input
    from worldsmith.curate.synth import _pan
    from worldsmith.video import write_video

    long_shot = _pan(np.random.default_rng(0), 300, 64, 96, speed=1.0)  # one 300-frame shot
    write_video(tmp_path / "long.mp4", long_shot, 25.0, preset="ultrafast")
    cfg = CurateConfig()
    cfg.split.max_frames, cfg.transcode.short_side = 40, 64
    res = process_input(make_item(tmp_path / "long.mp4"), cfg)
    assert res.info["decoded_frames"] == 300
    assert res.info["peak_buffered_frames"] <= cfg.split.max_frames + cfg.split.trim_frames + cfg.split.min_shot_frames + 1
    spans = [(r["start"], r["end"]) for r in res.records]
    assert spans[:2] == [(0, 40), (40, 80)] and spans[-1][1] == 300
    assert all(r["shot"] == 0 and r["shot_end"] == 300 for r in res.records)


def test_scaled_decode_matches_resize_for_any_even_size():
    """The curation decode path (iter_frames scale=) for sizes where I420 packing does and does not fit."""
    from worldsmith.video import encode_video, iter_frames, resize_frame

    frames = read_video(sample("bikes"), end=4, size=(108, 256))
    data = encode_video(frames, 25.0)
    for hw in [(54, 128), (90, 212), (108, 256), (64, 64)]:
        fast = np.stack(list(iter_frames(data, scale=hw)))
        ref = np.stack([resize_frame(f, hw, "stretch") for f in iter_frames(data)])
        assert fast.shape == ref.shape == (4, *hw, 3)
        assert np.abs(fast.astype(int) - ref).mean() < 6, hw
