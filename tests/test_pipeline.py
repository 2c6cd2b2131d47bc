"""Turned ROIs (a rolled face cut upright and mapped back) and the landmark model's face score."""
import cv2
import numpy as np
import pytest

import pipeline as pl
from conftest import SHIPPED_MODEL
from face_detector import FaceDetector, to_gray
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer, face_score
from metrics import nme_per_face
import geometry
import markup


def blob_image(center, shape=(400, 500), sigma=3.0):
    ys, xs = np.mgrid[:shape[0], :shape[1]] + 0.5           # pixel centres, continuous coordinates
    return (255 * np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma ** 2))).astype(np.uint8)


def centroid(image):
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]] + 0.5
    w = image.astype(np.float64)
    return np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum()


@pytest.mark.parametrize("angle", [0.0, 30.0, -50.0, 120.0])
def test_points_map_into_the_turned_crop_and_back(angle):
    square, size = (120.3, 80.7, 160.0), 80
    points = np.random.default_rng(1).uniform(100, 260, (68, 2))
    inside = pl.roi_points(points, square, angle, size)
    np.testing.assert_allclose(pl.unroi_points(inside, square, angle, size), points, atol=1e-3)


@pytest.mark.parametrize("angle", [0.0, 25.0, -40.0])
def test_the_crop_shows_an_image_point_where_roi_points_puts_it(angle):
    square, size, spot = (150.0, 100.0, 200.0), 80, np.array([[290.0, 170.0]])
    crop = pl.crop_roi(blob_image(spot[0]), square, angle, size)
    np.testing.assert_allclose(centroid(crop), pl.roi_points(spot, square, angle, size)[0], atol=0.3)


def test_a_rolled_face_is_cut_upright_and_its_roll_measured():
    upright = np.zeros((68, 2))
    upright[markup.RIGHT_EYE] = [100, 100]
    upright[markup.LEFT_EYE] = [160, 100]
    upright[:17] = np.column_stack([np.linspace(80, 180, 17), np.full(17, 190)])
    turn = cv2.getRotationMatrix2D((130, 140), -35, 1.0)         # clockwise on screen
    rolled = upright @ turn[:, :2].T + turn[:, 2]
    assert pl.roll_degrees(rolled) == pytest.approx(35)
    (x, y, side), angle = pl.keypoint_roi(rolled, 1.5)
    assert angle == pytest.approx(35)
    inside = pl.roi_points(rolled, (x, y, side), angle, 80)
    assert pl.roll_degrees(inside) == pytest.approx(0, abs=1e-3)
    assert inside.min() > 0 and inside.max() < 80                   # the face fits the crop
    # the keypoint box in the turned frame, not the wider box of the rolled points
    assert side == pytest.approx(1.5 * np.ptp(upright, 0).max())
    assert pl.keypoint_roi(upright, 1.5)[1] == 0.0


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data
    return data.astronaut()


def test_the_real_model_places_a_face_rolled_by_40_degrees_after_it_is_turned_upright(astronaut):
    """The astronaut turned by 40 degrees: the upright crop goes wrong, the turned crop gives the
    upright photo's keypoints turned with it."""
    keypointer, gray = Keypointer(DEFAULT_CHECKPOINT, "torch"), to_gray(astronaut)
    box = FaceDetector()(gray)[0]
    reference = pl.keypoints_for_boxes(gray, box[None], keypointer)[0]
    h, w = gray.shape
    turn = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), -40, 1.0)   # clockwise, pixel indices
    rolled = cv2.warpAffine(gray, turn, (w, h))
    truth = (reference - 0.5) @ turn[:, :2].T + turn[:, 2] + 0.5
    centre = truth.mean(0)
    rolled_box = np.array([*(centre - box[2:] / 2 - [0, 0.16 * box[2]]), *box[2:]])   # Haar-like box, upright
    plain = pl.keypoints_for_boxes(rolled, rolled_box[None], keypointer, align=None)[0]
    aligned = pl.keypoints_for_boxes(rolled, rolled_box[None], keypointer)[0]
    assert pl.roll_degrees(aligned) == pytest.approx(pl.roll_degrees(truth), abs=3)
    assert nme_per_face(aligned, truth) < 0.04
    assert nme_per_face(aligned, truth) < nme_per_face(plain, truth)


@pytest.mark.parametrize("checkpoint", [DEFAULT_CHECKPOINT, SHIPPED_MODEL])
def test_the_face_score_keeps_the_face_and_drops_non_faces(checkpoint, astronaut):
    keypointer, gray = Keypointer(checkpoint), to_gray(astronaut)
    box = FaceDetector()(gray)[0]
    face = pl.detect_keypoints(astronaut, FaceDetector(), keypointer)[0]
    assert face["score"] > 0.9
    rng = np.random.default_rng(0)
    walls = [pl.keypoints_for_rois(gray, [((x, 300.0, 150.0), 0.0)], keypointer)[1][0] for x in (20, 330)]
    noise = keypointer.predict(rng.random((4, 1, keypointer.input_size, keypointer.input_size)).astype(np.float32))[1]
    assert max(walls) < MIN_FACE_SCORE and noise.max() < MIN_FACE_SCORE
    assert box[0] > 150                                   # the two walls are away from the face


def test_the_onnx_graph_gives_the_same_score_as_pytorch():
    torch_keypointer = Keypointer(DEFAULT_CHECKPOINT, "torch")
    size = torch_keypointer.input_size
    crops = np.random.default_rng(2).random((3, 1, size, size)).astype(np.float32)
    crops[0, 0, size // 4:size * 3 // 4, size // 4:size * 3 // 4] = 0.2
    torch_scores = torch_keypointer.predict(crops)[1]
    np.testing.assert_allclose(Keypointer(DEFAULT_CHECKPOINT, "onnx").predict(crops)[1], torch_scores, atol=1e-4)


def test_face_score_is_one_half_at_the_calibration_and_falls_with_spread():
    fit = {"at_half": 2.0, "scale": 0.1}
    scores = face_score([1.5, 2.0, 2.5, 1000.0], fit)
    assert scores[1] == pytest.approx(0.5) and scores[0] > 0.99 and scores[2] < 0.01 and scores[3] == pytest.approx(0)


def test_a_checkpoint_without_a_face_head_scores_by_its_calibrated_spread(tmp_path, astronaut):
    import torch
    from checkpoint import load_checkpoint, save_checkpoint
    state = load_checkpoint(DEFAULT_CHECKPOINT)
    state["config"]["model"] = {k: v for k, v in state["config"]["model"].items() if k != "face_head"}
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("face_head")}
    save_checkpoint(state, str(tmp_path / "spread.pt"))
    keypointer = Keypointer(str(tmp_path / "spread.pt"), "torch")
    assert keypointer.scored == "spread" and Keypointer(DEFAULT_CHECKPOINT, "torch").scored == "face_head"
    assert pl.detect_keypoints(astronaut, FaceDetector(), keypointer)[0]["score"] > 0.9
    size = keypointer.input_size
    noise = torch.rand(4, 1, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    assert keypointer.predict(noise)[1].max() < MIN_FACE_SCORE


def test_a_misplaced_detection_is_looked_at_again_and_kept(astronaut):
    """A box on the astronaut's mouth, a third of her face: the first crop is no face, the
    wider look finds it, and the face comes out framed on its keypoints."""
    keypointer, gray = Keypointer(), to_gray(astronaut)
    box = FaceDetector()(gray)[0]
    right = pl.detect_keypoints(astronaut, FaceDetector(), keypointer)[0]["keypoints"]

    class OnTheMouth:
        def __call__(self, image):
            x, y = right[48:68].mean(0)
            return np.array([[x - box[2] / 6, y - box[2] / 6, box[2] / 3, box[2] / 3]])
    rois = [(pl.roi_square(OnTheMouth()(gray)[0]), 0.0)]
    assert pl.keypoints_for_rois(gray, rois, keypointer)[1][0] < MIN_FACE_SCORE
    face = pl.detect_keypoints(astronaut, OnTheMouth(), keypointer, min_score=MIN_FACE_SCORE)
    assert len(face) == 1 and nme_per_face(face[0]["keypoints"], right) < 0.03


def test_one_face_found_twice_is_reported_once_keeping_the_first_look():
    shape = np.random.default_rng(3).uniform(100, 200, (68, 2))
    found = {"box": [100, 100, 100, 100], "keypoints": shape, "score": 0.97}
    rescued = {"box": [140, 170, 30, 30], "keypoints": shape + 2, "score": 0.99}
    elsewhere = {"box": [400, 100, 100, 100], "keypoints": shape + 300, "score": 0.6}
    assert pl.distinct([rescued, found, elsewhere], [True, False, False]) == [found, elsewhere]
    assert pl.distinct([rescued, found], [False, False]) == [rescued]       # else the higher score


def test_a_face_is_misframed_when_rolled_or_when_its_framing_is_off_by_the_reframe_ratio(astronaut):
    keypointer, gray = Keypointer(DEFAULT_CHECKPOINT, "torch"), to_gray(astronaut)
    points = pl.keypoints_for_boxes(gray, FaceDetector()(gray)[0][None], keypointer)[0]
    scale = keypointer.framing_scale
    x, y, side = geometry.face_square(points, scale)

    def roi(times):
        grown = side * times
        return (x + side / 2 - grown / 2, y + side / 2 - grown / 2, grown), 0.0
    assert pl.roll_degrees(points) == pytest.approx(0, abs=5)
    framed = pl.keypoint_roi(points, scale)
    assert not pl.misframed(roi(1.0), framed)
    assert not pl.misframed(roi(1.05), framed, reframe=1.1)
    assert pl.misframed(roi(1.15), framed, reframe=1.1)
    assert pl.misframed(roi(1 / 1.15), framed, reframe=1.1)
    assert not pl.misframed(roi(1.15), framed, reframe=None)
    centre = points.mean(0)
    rolled = (points - centre) @ cv2.getRotationMatrix2D((0, 0), -20, 1.0)[:, :2].T + centre
    assert pl.misframed(roi(1.0), pl.keypoint_roi(rolled, scale), reframe=None)


def test_a_face_framed_too_loosely_is_cut_again_on_its_keypoints(astronaut):
    """A square 1.4x the training framing: the second cut finds what the training framing finds."""
    keypointer, gray = Keypointer(DEFAULT_CHECKPOINT, "torch"), to_gray(astronaut)
    reference = pl.keypoints_for_boxes(gray, FaceDetector()(gray)[0][None], keypointer)[0]
    x, y, side = geometry.face_square(reference, keypointer.framing_scale)
    loose = (x - 0.2 * side, y - 0.2 * side, 1.4 * side)
    framed = pl.keypoints_for_squares(gray, [(x, y, side)], keypointer)[0]
    once = pl.keypoints_for_squares(gray, [loose], keypointer, reframe=None)[0]
    again = pl.keypoints_for_squares(gray, [loose], keypointer)[0]
    assert nme_per_face(again, framed) < 0.02 and nme_per_face(again, framed) < 0.5 * nme_per_face(once, framed)
