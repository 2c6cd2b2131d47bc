"""Tracking through video, the One Euro filter, and the threads that read and write frames."""
import math

import cv2
import numpy as np
import pytest

import data_files
import data_load as dl
import detect
import video
from benchmarks import clips
from benchmarks.video import Counted
from face_detector import FaceDetector
from keypointer import Keypointer
from pipeline import detect_keypoints
from tracking import FaceTracker, OneEuroFilter


def test_one_euro_at_rest_is_a_first_order_low_pass_with_its_cut_off():
    smooth = OneEuroFilter(min_cutoff=2.0, beta=0.0)
    assert smooth(np.zeros((68, 2)), 0.0)[0, 0] == 0           # the first value passes as it is
    alpha = 1 / (1 + 1 / (2 * math.pi * 2.0) / 0.1)
    np.testing.assert_allclose(smooth(np.ones((68, 2)), 0.1), alpha)
    np.testing.assert_allclose(smooth(np.ones((68, 2)), 0.2), alpha + alpha * (1 - alpha))


def test_one_euro_calms_a_still_face_and_follows_a_moving_one():
    rng, frames = np.random.default_rng(0), np.arange(120) / 30
    still = 100 + rng.normal(0, 0.5, (120, 68, 2))
    moving = still + 200 * frames[:, None, None]                # 200 px/s, a face of 150 px
    out = {}
    for name, track in (("still", still), ("moving", moving)):
        smooth = OneEuroFilter(0.5, 30.0)
        out[name] = np.array([smooth(p, t, 150.0) for p, t in zip(track, frames)])
    assert np.diff(out["still"][30:], axis=0).std() < 0.5 * np.diff(still[30:], axis=0).std()
    lag = (moving - out["moving"])[30:, :, 0].mean()
    slow = OneEuroFilter(0.5, 0.0)
    slow_lag = (moving - np.array([slow(p, t, 150.0) for p, t in zip(moving, frames)]))[30:, :, 0].mean()
    assert 0 < lag < 0.25 * slow_lag and lag < 3                # beta opens the filter on motion


@pytest.fixture(scope="module")
def clip(data_dir):
    test = dl.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    return clips.make_clip(test.image(3), test.keypoints[3])


def test_tracking_follows_the_face_loses_it_when_it_leaves_and_finds_it_again(clip):
    frames, truth = clip
    keypointer = Keypointer()
    tracked_detector, plain_detector = Counted(FaceDetector()), Counted(FaceDetector())
    tracker = FaceTracker(tracked_detector, keypointer, smooth=None)
    tracked, searched = [], []
    for i, frame in enumerate(frames):
        before = tracked_detector.calls
        tracked.append(np.array([f["keypoints"] for f in tracker(frame, i / clips.FPS)]).reshape(-1, 68, 2))
        searched.append(tracked_detector.calls > before)
    plain = [np.array([f["keypoints"] for f in detect_keypoints(frame, plain_detector, keypointer)]).reshape(-1, 68, 2)
             for frame in frames]
    ours, theirs = clips.clip_scores(tracked, truth), clips.clip_scores(plain, truth)
    assert ours["nme"] <= theirs["nme"] + 0.005
    assert ours["false_faces"] == 0 and ours["frames_to_reacquire"] <= 3
    steady, searched = truth["steady"] & truth["in_view"], np.array(searched)
    assert all(len(tracked[i]) == 1 for i in np.flatnonzero(steady))
    # the detector runs on every frame without a face, and on few of the tracked ones
    assert plain_detector.calls == len(frames)
    assert searched[truth["absent"]].all() and searched[steady].mean() < 0.1


def test_smoothing_lowers_the_jitter_of_the_tracked_keypoints(clip):
    frames, truth = clip
    frames = frames[:clips.in_view_frames()]
    truth = {k: v[:len(frames)] for k, v in truth.items()}
    jitter = {}
    for smooth in (None, (0.5, 30.0)):
        tracker = FaceTracker(FaceDetector(), Keypointer(), smooth=smooth)
        predicted = [np.array([f["keypoints"] for f in tracker(frame, i / clips.FPS)]).reshape(-1, 68, 2)
                     for i, frame in enumerate(frames)]
        jitter[smooth] = clips.clip_scores(predicted, truth)
    assert jitter[(0.5, 30.0)]["jitter"] < 0.8 * jitter[None]["jitter"]
    assert jitter[(0.5, 30.0)]["nme"] < jitter[None]["nme"] + 0.003


def test_background_threads_keep_order_and_pass_errors_on():
    assert list(video.in_background(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")
    with pytest.raises(OSError, match="disk gone"):
        list(video.in_background(broken()))


def test_the_background_writer_writes_every_frame(tmp_path):
    writer = video.BackgroundWriter(str(tmp_path / "out.mp4"), 10.0, (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.close()
    assert int(cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT)) == 12


@pytest.mark.parametrize("value", ["1", "a,b", "0,1", "1,-2"])
def test_a_bad_smooth_option_is_one_line_and_exit_2(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        detect.parse_args(["--smooth", value])
    assert exit_info.value.code == 2 and "--smooth" in capsys.readouterr().err
    assert detect.parse_args(["--smooth", "off"]).smooth is None
