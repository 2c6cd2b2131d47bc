"""Fitting the face/no-face head (train_face_score.py)."""
import subprocess
import sys

import numpy as np

import train_face_score as tfs
from conftest import ROOT
from keypointer import Keypointer


def test_the_logistic_fit_folds_its_standardization_into_raw_weights():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(0, 100, 400), rng.normal(5, 0.01, 400)])
    y = (x[:, 0] + 3000 * (x[:, 1] - 5) > 0).astype(int)        # both features matter, on very different scales
    weights, bias = tfs.fit_logistic(x, y, l2=1e-4)
    assert ((x @ weights + bias > 0) == y).mean() > 0.97
    assert weights[0] > 0 and weights[1] > 0


def test_drawn_non_faces_are_crops_of_the_right_size():
    crops = [tfs.synthetic_crop(80, np.random.default_rng(i)) for i in range(5)]
    assert all(c.shape == (80, 80) and c.dtype == np.uint8 for c in crops)
    assert len({c.tobytes() for c in crops}) == 5


def test_a_small_fit_writes_a_checkpoint_whose_head_scores_faces(data_dir, tmp_path):
    out = tmp_path / "headed.pt"
    run = subprocess.run([sys.executable, "train_face_score.py", "--images", "60", "--out", str(out),
                          "--data-dir", data_dir], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "AUC" in run.stdout and out.exists()
    torch_scores = Keypointer(str(out), "torch")
    assert torch_scores.scored == "face_head"
    size = torch_scores.input_size
    crops = np.random.default_rng(1).random((3, 1, size, size)).astype(np.float32)
    np.testing.assert_allclose(Keypointer(str(out), "onnx").predict(crops)[1], torch_scores.predict(crops)[1], atol=1e-4)


def test_dry_run_writes_nothing_and_a_bad_checkpoint_is_one_line(data_dir, tmp_path):
    run = subprocess.run([sys.executable, "train_face_score.py", "--dry-run", "--out", str(tmp_path / "x.pt"),
                          "--data-dir", data_dir], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0 and "dry run" in run.stdout and not (tmp_path / "x.pt").exists()
    bad = subprocess.run([sys.executable, "train_face_score.py", "--checkpoint", str(tmp_path / "none.pt")],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "not found" in bad.stderr


def test_upsampled_mining_adds_smaller_false_faces(data_dir):
    import data_files
    import data_load
    from face_detector import to_gray
    from framing import roi_square
    train = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))
    found = {}
    for upsample in (0, 1):
        haar = tfs.hard_negative_detector(upsample)
        found[upsample] = [box for i in range(0, 400, 20) for box in haar(to_gray(train.image(i)))
                           if not tfs.overlaps(roi_square(box), train.keypoints[i])]
    assert len(found[1]) > len(found[0]) > 0
    assert min(b[2] for b in found[1]) < haar.window <= min(b[2] for b in found[0])


def test_a_bad_upsample_is_refused_before_anything_loads(tmp_path):
    run = subprocess.run([sys.executable, "train_face_score.py", "--haar-upsample", "9", "--checkpoint", str(tmp_path / "none.pt")],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "--haar-upsample" in run.stderr and "not found" not in run.stderr


def test_the_operating_point_keeps_the_asked_share_of_faces():
    logits = np.random.default_rng(0).normal(2.0, 1.5, 1000)
    for recall in (0.9, 0.995, 0.999, 1.0):
        shift = tfs.operating_point(logits, recall)
        assert (logits >= shift).mean() >= recall
        assert (logits >= shift).mean() - recall < 2 / len(logits)
    assert tfs.operating_point(logits, 1.0) == logits.min()


def test_a_face_recall_out_of_range_is_refused_before_anything_loads(tmp_path):
    run = subprocess.run([sys.executable, "train_face_score.py", "--face-recall", "1.5", "--checkpoint", str(tmp_path / "none.pt")],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "--face-recall" in run.stderr and "not found" not in run.stderr
