"""Face detection, tracking across missed frames, and a blur that touches only the face boxes."""

import cv2
import numpy as np
import pytest

from worldsmith.guardrail import ContentVerdict, Guardrail
from worldsmith.guardrail.faces import (DetectorConfig, FaceDetector, TrackerConfig, link_tracks, pad_box, track_faces,
                                       track_span)
from worldsmith.guardrail.policy import load_policy


def _carphone_frame(path, i):
    from worldsmith.video import read_video

    return read_video(path, start=i, end=i + 1)[0]


def _sharpness(img):
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_detector_finds_the_face(carphone):
    boxes = FaceDetector().detect(carphone[0])
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    # the driver's face sits in the upper middle of the 176x144 frame and is ~60 px tall
    assert 60 < x + w / 2 < 120 and 30 < y + h / 2 < 90 and 40 < w < 90


def test_rotated_pass_finds_a_tilted_head(carphone_path):
    tilted = _carphone_frame(carphone_path, 96)  # the driver tilts his head: the upright cascade alone misses it
    upright_only = FaceDetector(DetectorConfig(angles=(0.0,), profile=False))
    assert upright_only.detect(tilted) == []
    assert len(FaceDetector().detect(tilted)) == 1


def test_tracker_interpolates_a_missed_frame():
    a, b = (10.0, 10.0, 20.0, 20.0), (14.0, 10.0, 20.0, 20.0)
    out = track_faces([[a], [], [b]], TrackerConfig(max_missed=0))
    assert out[0] == [a] and out[2] == [b]
    assert out[1] == [(12.0, 10.0, 20.0, 20.0)]


def test_tracker_carries_a_box_before_and_after_detections():
    box = (30.0, 30.0, 16.0, 16.0)
    dets = [[], [], [box], [box], [], [], [], []]
    out = track_faces(dets, TrackerConfig(max_missed=2))
    assert [len(b) for b in out] == [1, 1, 1, 1, 1, 1, 0, 0]


def test_tracker_keeps_two_faces_apart():
    left, right = (0.0, 0.0, 10.0, 10.0), (50.0, 0.0, 10.0, 10.0)
    out = track_faces([[left, right], [right], [left, right]], TrackerConfig(max_missed=0))
    assert sorted(out[1]) == sorted([left, right])


def test_link_tracks_separates_a_persistent_face_from_a_one_frame_false_hit():
    face, stray = (10.0, 10.0, 20.0, 20.0), (60.0, 60.0, 40.0, 40.0)
    dets = [[face], [face, stray], [], [face]]
    tracks = link_tracks(dets, TrackerConfig(max_missed=1))
    assert sorted(len(tr.boxes) for tr in tracks) == [1, 3]
    longest = max(tracks, key=lambda tr: len(tr.boxes))
    assert track_span(longest, 4, TrackerConfig(max_missed=1)) == {0: face, 1: face, 2: face, 3: face}
    stray_span = track_span(min(tracks, key=lambda tr: len(tr.boxes)), 4, TrackerConfig(max_missed=1))
    assert sorted(stray_span) == [0, 1, 2]  # carried one frame each way


def test_blur_changes_the_face_and_nothing_else(carphone):
    frames = carphone[:6]
    guarded, report = Guardrail.from_policy().guard_video(frames)
    assert report.faces_blurred == [1] * 6
    for t in range(6):
        mask = np.zeros(frames.shape[1:3], bool)
        for x0, y0, x1, y1 in report.boxes[t]:
            mask[y0:y1, x0:x1] = True
            face_before, face_after = frames[t, y0:y1, x0:x1], guarded[t, y0:y1, x0:x1]
            assert _sharpness(face_after) < 0.1 * _sharpness(face_before)
        assert np.array_equal(guarded[t][~mask], frames[t][~mask])  # the rest of the frame is untouched
        assert 0.05 < mask.mean() < 0.5
    assert not np.shares_memory(guarded, frames)


def test_a_face_the_detector_misses_in_one_frame_is_still_blurred(carphone, carphone_path):
    # frame 2 is swapped for a tilted-head frame that an upright-only detector cannot see
    frames = np.stack([carphone[0], carphone[1], _carphone_frame(carphone_path, 96), carphone[3], carphone[4]])
    policy = load_policy()
    policy.video.detector = DetectorConfig(angles=(0.0,), profile=False)
    policy.video.tracker = TrackerConfig(max_missed=1)
    _, report = Guardrail(policy).guard_video(frames)
    assert report.faces_detected[2] == 0
    assert report.faces_blurred == [1, 1, 1, 1, 1]


def test_pixelate_and_padding():
    frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert pad_box((10, 10, 20, 20), 0.5, (64, 64)) == (0, 0, 40, 40)
    assert pad_box((50, 50, 20, 20), 0.0, (64, 64)) == (50, 50, 64, 64)
    from worldsmith.guardrail.faces import BlurConfig, blur_region

    out = frame.copy()
    blur_region(out, (8, 8, 40, 40), BlurConfig(method="pixelate", strength=0.25))
    assert len(np.unique(out[8:40, 8:40].reshape(-1, 3), axis=0)) <= 16  # 4x4 cells of 8 px
    assert np.array_equal(out[40:], frame[40:])


def test_content_classifier_plug_in(carphone):
    seen = []

    def refuse_everything(frames):
        seen.append(frames.shape)
        return ContentVerdict(False, "test classifier says no", 0.99)

    policy = load_policy()
    policy.video.face_blur = False  # the plug-in runs with or without face blurring
    guard = Guardrail(policy, content_classifier=refuse_everything)
    out, report = guard.guard_video(carphone[:2])
    assert seen == [carphone[:2].shape]
    assert not report.allowed and report.reason == "content:test classifier says no"
    assert not out.any()  # a refused video is never handed back

    allow = Guardrail(policy, content_classifier=lambda f: ContentVerdict(True))
    _, report = allow.guard_video(carphone[:2])
    assert report.allowed


def test_bad_frames_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        Guardrail.from_policy().guard_video(np.zeros((2, 8, 8, 3), np.float32))
