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
from tracking import SMOOTH_BETA, SMOOTH_MIN_CUTOFF, SMOOTH_SHAPE_BETA, FaceTracker, OneEuroFilter, PoseShapeFilter


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


def _turned(points, degrees, scale, shift):
    turn = np.deg2rad(degrees)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return scale * points @ rotation.T + shift


def test_pose_and_shape_smoothing_keeps_a_rigidly_moving_face_undistorted_and_a_still_one_exact():
    face = np.random.default_rng(1).uniform(-60, 60, (68, 2))
    smooth, still = PoseShapeFilter(), PoseShapeFilter()
    for i in range(40):
        points = _turned(face, 2 * i, 1 + 0.01 * i, [300 + 5 * i, 200 - 3 * i])
        out = smooth(points, i / 30, 150.0)
        if i == 0:
            np.testing.assert_allclose(out, points, atol=1e-9)      # the first frame passes as it is
        centred, reference = out - out.mean(0), face - face.mean(0)
        fit, *_ = np.linalg.lstsq(reference, centred, rcond=None)   # a similarity maps the face onto the output
        np.testing.assert_allclose(reference @ fit, centred, atol=1e-6)
        np.testing.assert_allclose(fit[0, 0], fit[1, 1], atol=1e-9)
        np.testing.assert_allclose(fit[0, 1], -fit[1, 0], atol=1e-9)
        held = still(_turned(face, 15, 1.2, [320, 240]), i / 30, 150.0)
    np.testing.assert_allclose(held, _turned(face, 15, 1.2, [320, 240]), atol=1e-9)


def test_pose_and_shape_smoothing_passes_points_on_one_spot_as_they_are_and_starts_afresh():
    smooth, face = PoseShapeFilter(), np.random.default_rng(4).uniform(-60, 60, (68, 2))
    smooth(face, 0.0, 150.0)
    np.testing.assert_array_equal(smooth(np.full((68, 2), 7.0), 1 / 30, 150.0), 7.0)
    np.testing.assert_allclose(smooth(face + 50, 2 / 30, 150.0), face + 50)     # a fresh start passes as it is


def test_pose_and_shape_smoothing_beats_one_filter_on_a_noisy_turning_face():
    rng, times = np.random.default_rng(0), np.arange(90) / 30
    face = rng.uniform(-60, 60, (68, 2))
    truth = np.array([_turned(face, 30 * np.sin(t), 1.0, [320 + 150 * t, 240]) for t in times])
    noisy = truth + rng.normal(0, 1.0, truth.shape)
    errors = {}
    for name, smooth in (("whole", OneEuroFilter(0.5, 20.0)), ("parts", PoseShapeFilter())):
        out = np.array([smooth(p, t, 150.0) for p, t in zip(noisy, times)])
        errors[name] = np.linalg.norm(out - truth, axis=2)[15:].mean()
    assert errors["parts"] < 0.9 * errors["whole"] and errors["parts"] < np.linalg.norm(noisy - truth, axis=2).mean()


def test_pose_and_shape_smoothing_follows_a_mouth_that_opens_and_leaves_the_rest_still():
    face, times = np.random.default_rng(2).uniform(-60, 60, (68, 2)), np.arange(60) / 30
    opened = face.copy()
    opened[48:68, 1] += 10.0                                    # the mouth drops 10 px at 1 s
    smooth = PoseShapeFilter()
    out = [smooth(face if t < 1 else opened, t, 150.0) for t in times]
    assert np.abs(out[29] - face).max() < 1e-9
    assert np.abs(out[33][48:68] - opened[48:68]).max() < 0.5     # within half a pixel 0.1 s later
    assert np.abs(out[-1][:48] - face[:48]).max() < 0.01          # and the rest of the face where it was


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
    default = (SMOOTH_MIN_CUTOFF, SMOOTH_BETA, SMOOTH_SHAPE_BETA)
    for smooth in (None, default):
        tracker = FaceTracker(FaceDetector(), Keypointer(), smooth=smooth)
        predicted = [np.array([f["keypoints"] for f in tracker(frame, i / clips.FPS)]).reshape(-1, 68, 2)
                     for i, frame in enumerate(frames)]
        jitter[smooth] = clips.clip_scores(predicted, truth)
    assert jitter[default]["jitter"] < 0.8 * jitter[None]["jitter"]
    assert jitter[default]["nme"] < jitter[None]["nme"] + 0.003


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


@pytest.mark.parametrize("value", ["1", "a,b", "0,1", "1,-2", "1,2,-3", "1,2,3,4"])
def test_a_bad_smooth_option_is_one_line_and_exit_2(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        detect.parse_args(["--smooth", value])
    assert exit_info.value.code == 2 and "--smooth" in capsys.readouterr().err
    assert detect.parse_args(["--smooth", "off"]).smooth is None
    assert detect.parse_args(["--smooth", "1,2"]).smooth == (1.0, 2.0, SMOOTH_SHAPE_BETA)
    assert detect.parse_args(["--smooth", "1,2,3"]).smooth == (1.0, 2.0, 3.0)


def test_a_synthetic_expression_moves_truth_and_prediction_alike_down_the_face():
    upright = np.random.default_rng(3).uniform(-60, 60, (68, 2))
    upright[36], upright[45] = (-30, -20), (30, -20)                   # outer eye corners 60 px apart
    for degrees in (0, 90):
        points = _turned(upright, degrees, 1.0, [320, 240])
        truth = {"keypoints": np.repeat(points[None], 31, 0)}
        predicted = [points[None] + 1.0 for _ in range(31)]              # a tracker 1 px off
        moved, moved_truth = clips.with_expression(predicted, truth, hz=1.0, opening=0.4)
        shifts = moved_truth["keypoints"] - truth["keypoints"]
        np.testing.assert_allclose(shifts[0], 0, atol=1e-9)              # closed at the start
        down = _turned(np.array([[0.0, 1.0]]), degrees, 1.0, 0)[0]
        np.testing.assert_allclose(shifts[15][57], 0.4 * 60 * down, atol=1e-6)   # wide open half a second on
        assert np.abs(shifts[15][np.r_[0:6, 11:48]]).max() < 1e-9          # the eyes, brows, nose stay
        for p, t in zip(moved, moved_truth["keypoints"]):
            np.testing.assert_allclose(p[0] - t, 1.0, atol=1e-9)           # the tracker's error is unchanged
    away = {"keypoints": np.full((2, 68, 2), np.nan)}                      # frames without the face
    moved, _ = clips.with_expression([points[None], np.zeros((0, 68, 2))], away, hz=1.0, opening=0.4)
    np.testing.assert_array_equal(moved[0], points[None])                  # a false face there is left as it is
