"""The in-the-wild model: the command line's default, and better than the Udacity model on photographs."""
import os

import numpy as np
import pytest

import data_300w
import detect
import evaluate
import pipeline
from conftest import SHIPPED_MODEL
from keypointer import DEFAULT_CHECKPOINT, Keypointer
import face_detector
import markup

LFPW_FACES = 40     # the first faces of LFPW's test set: enough to separate the two models


@pytest.fixture(scope="module")
def lfpw():
    root = data_300w.find_300w_dir()     # conftest deselects these tests where there is none
    return data_300w.PhotoFaces(data_300w.scan_300w(os.path.join(root, "lfpw", "testset"))[:LFPW_FACES])


def test_the_command_line_uses_the_in_the_wild_model_by_default():
    assert detect.parse_args([]).checkpoint == DEFAULT_CHECKPOINT
    wild = Keypointer(DEFAULT_CHECKPOINT, "torch")
    assert wild.markup == "300w" and wild.config["markups"] == ["300w"]
    assert Keypointer(SHIPPED_MODEL, "torch").markup == "udacity"
    assert os.path.getsize(DEFAULT_CHECKPOINT) < 20e6


@pytest.mark.wild_photos
def test_in_the_wild_model_beats_the_udacity_model_on_lfpw_photographs(lfpw):
    detector = face_detector.FaceDetector()
    scores = {}
    for name, checkpoint in (("wild", DEFAULT_CHECKPOINT), ("udacity", SHIPPED_MODEL)):
        results = evaluate.run_on_dataset(lfpw, *evaluate.cnn_pipeline(Keypointer(checkpoint), "haar", detector))
        scores[name] = evaluate.score(results)
    assert scores["wild"]["detection_rate"] == scores["udacity"]["detection_rate"] > 0.95   # same detector
    assert scores["wild"]["nme"] < scores["udacity"]["nme"] - 0.003
    assert scores["wild"]["nme"] < 0.07


@pytest.mark.wild_photos
def test_the_evaluated_pipeline_rescues_a_box_on_part_of_a_face_as_detect_does():
    """LFPW test's image_0074: Haar frames part of a near-profile face; the face score sends the
    box for a second look (pipeline.rescue), which finds the whole face, as detect.py would."""
    root = data_300w.find_300w_dir()
    faces = [f for f in data_300w.scan_300w(os.path.join(root, "lfpw", "testset")) if f.name == "image_0074"]
    item = data_300w.PhotoFaces(faces)[0]
    model, detector = Keypointer(DEFAULT_CHECKPOINT), face_detector.FaceDetector()
    scored = evaluate.run_on_face(item, *evaluate.cnn_pipeline(model, "haar", detector))
    unscored = evaluate.run_on_face(item, *evaluate.cnn_pipeline(model, "haar", detector, min_score=0))
    assert unscored["nme"] > 0.1 > 0.06 > scored["nme"]
    found = pipeline.detect_keypoints(item["image"], detector, model)
    assert any(evaluate.nme_per_face(f["keypoints"], item["keypoints"]) < 0.06 for f in found)


def test_the_evaluated_pipeline_drops_a_detection_the_model_scores_as_no_face():
    blank = np.full((240, 320, 3), 128, np.uint8)
    find_boxes, landmarks = evaluate.cnn_pipeline(Keypointer(DEFAULT_CHECKPOINT), "haar", lambda gray: [])
    find_boxes(blank)
    assert landmarks(blank, np.array([100.0, 60.0, 80.0, 80.0])) is None
    _, keep_all = evaluate.cnn_pipeline(Keypointer(DEFAULT_CHECKPOINT), "haar", lambda gray: [], min_score=0)
    assert keep_all(blank, np.array([100.0, 60.0, 80.0, 80.0])).shape == (68, 2)


@pytest.mark.wild_photos
def test_the_occlusion_benchmark_hides_exactly_one_part_and_the_hidden_points_suffer(lfpw):
    """benchmarks/occlusion.py covers a part's padded box and nothing else, with one gray; on real
    photographs the hidden points are placed worse than the clean face's points."""
    from benchmarks import occlusion
    item = lfpw[0]
    image, target = item["image"], item["keypoints"]
    out = occlusion.occluded(image, target, "mouth")
    changed = np.argwhere((out != image).any(-1))
    (y0, x0), (y1, x1) = changed.min(0), changed.max(0)
    mouth = target[markup.COVERED_PARTS["mouth"]]
    assert (x0 <= mouth[:, 0].min() and mouth[:, 0].max() <= x1 + 1 and
            y0 <= mouth[:, 1].min() and mouth[:, 1].max() <= y1 + 1)
    assert y0 > target[30, 1]                                  # the nose's tip is left visible
    assert len(np.unique(out[y0:y1 + 1, x0:x1 + 1])) == 1
    table = occlusion.occlusion_table(Keypointer(DEFAULT_CHECKPOINT), occlusion.spread_over(lfpw, 8))
    assert set(table) == {"clean", *markup.COVERED_PARTS}
    assert table["clean"]["faces"] == 8 and table["clean"]["hidden_nme"] is None
    assert table["clean"]["under_face_score"] == 0          # real faces, framed on their annotation
    assert all(table[part]["hidden_nme"] > table["clean"]["nme"] for part in markup.COVERED_PARTS)


@pytest.mark.wild_photos
def test_the_occlusion_benchmark_frames_the_other_pipeline_on_the_clean_photograph(lfpw):
    """dlib's rows: its detector sees only the clean photographs, its box is kept for every covered
    copy, and a face it finds no box for is left out of every condition (a stand-in pipeline whose
    box is the keypoints' box and whose points are the annotation: every row scores 0)."""
    from benchmarks import occlusion
    faces = [lfpw[i] for i in range(4)]
    truth = {tuple(pipeline.points_box(f["keypoints"])): f["keypoints"] for f in faces}
    detected, framed = [], []

    def find_boxes(image):
        detected.append(image.copy())
        face = next(f for f in faces if f["image"].shape == image.shape and np.array_equal(f["image"], image))
        return [] if face is faces[0] else [pipeline.points_box(face["keypoints"])]

    def landmarks(image, box):
        framed.append(tuple(box))
        return truth[tuple(box)]

    table = occlusion.dlib_table(faces, pipeline=(find_boxes, landmarks))
    assert len(detected) == 4                                   # the clean photographs, once each
    assert {s["faces"] for s in table.values()} == {3} and len(framed) == 3 * len(table)
    assert all(s["nme"] == 0 for s in table.values())
