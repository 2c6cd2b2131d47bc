"""The in-the-wild model: the command line's default, and better than the Udacity model on photographs."""
import os

import pytest

import data_300w
import detect
import evaluate
from conftest import SHIPPED_MODEL
from keypointer import DEFAULT_CHECKPOINT, Keypointer
import face_detector

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
