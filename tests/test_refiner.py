"""The second stage (refiner.py, train_refiner.py): its geometry, its fit, its switch."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from checkpoint import CheckpointError, add_fitted_part, load_checkpoint
from conftest import ROOT
from detect import sample_image
from face_detector import FaceDetector, to_gray
from framing import roi_square
from keypointer import DEFAULT_CHECKPOINT, ONNX_TOLERANCE, UDACITY_CHECKPOINT, Keypointer
from pipeline import crop_roi
from refiner import ShapeRefiner, fit_refiner, gated, pixels_from_mean_frame, prepare_in_batches, similarity, to_indices

SIZE = 80


def test_similarity_finds_the_turn_and_scale_that_maps_a_shape_back_onto_the_mean():
    mean = torch.randn(68, 2)
    angle, scale, shift = math.radians(25), 1.7, torch.tensor([0.3, -0.2])
    turn = torch.tensor([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    shapes = (mean @ turn * scale + shift)[None]
    to_shape = pixels_from_mean_frame(similarity(shapes, mean), 1.0)
    centred = shapes - shapes.mean(1, keepdim=True)
    torch.testing.assert_close((mean - mean.mean(0)) @ to_shape[0], centred[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(centred @ torch.linalg.inv(to_shape), (mean - mean.mean(0))[None], atol=1e-5, rtol=0)
    torch.testing.assert_close(pixels_from_mean_frame(similarity(shapes, mean), 3.0), 3 * to_shape)


def drawn_marks(count, rng):
    """Crops with a dark dot at each of 68 points (a spread-out layout, moved and turned a
    little per crop), the points in the [-1, 1] frame, and starts off by up to 1.5 px."""
    ys, xs = np.mgrid[0:8, 0:9]
    layout = np.stack([xs.ravel(), ys.ravel()], 1)[:68] * 7.5 - np.array([30.0, 26.0])    # pixels about the centre
    crops, points = np.full((count, 1, SIZE, SIZE), 0.8, np.float32), np.zeros((count, 68, 2), np.float32)
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    for i in range(count):
        angle = rng.uniform(-0.15, 0.15)
        turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        pixels = layout @ turn * rng.uniform(0.95, 1.05) + SIZE / 2 + rng.uniform(-2, 2, 2)
        for x, y in pixels:
            crops[i, 0] -= 0.6 * np.exp(-((grid_x - x) ** 2 + (grid_y - y) ** 2) / (2 * 1.5 ** 2))
        points[i] = pixels / (SIZE / 2) - 1
    starts = points + rng.uniform(-1.5, 1.5, (count, 1, 2)) / (SIZE / 2)
    return torch.from_numpy(crops), torch.from_numpy(starts.astype(np.float32)), torch.from_numpy(points)


def test_a_fitted_refiner_moves_points_it_has_never_seen_onto_the_marks():
    rng = np.random.default_rng(0)
    crops, starts, points = drawn_marks(300, rng)
    eye = float((points[:, 45] - points[:, 36]).norm(dim=-1).mean())
    refiner = ShapeRefiner(SIZE, radii=[1.5 / (SIZE / 2) / eye] * 3)      # cells 1.5 px apart
    fit_refiner(refiner, crops, starts, points, l2=1.0)
    crops, starts, points = drawn_marks(60, rng)
    with torch.no_grad():
        refined = refiner(crops, starts)
    before, after = (starts - points).norm(dim=-1).mean(), (refined - points).norm(dim=-1).mean()
    assert after < 0.4 * before


def test_a_crop_reads_the_same_cells_alone_as_deep_in_a_batch_of_thousands():
    # a fit batches some 18,000 crops: their pixel rows run past float32's whole numbers (2 ** 24)
    size, count = 112, 1400
    crops, starts, _ = drawn_marks(1, np.random.default_rng(4))
    crop = torch.nn.functional.interpolate(crops, size=(size, size), mode="bilinear")
    refiner = ShapeRefiner(size, radii=[0.05])
    refiner.mean_shape.copy_(starts[0])
    batch = torch.cat([torch.zeros(count - 1, 1, size, size), crop])
    alone = refiner.readings(refiner.prepare(crop, starts), to_indices(starts, size), 0)
    together = refiner.readings(refiner.prepare(batch, starts.expand(count, -1, -1)),
                                to_indices(starts.expand(count, -1, -1), size), 0)
    assert alone.abs().sum() > 0
    torch.testing.assert_close(together[-1], alone[0])


def test_a_training_set_prepared_in_batches_reads_what_it_reads_prepared_whole():
    crops, starts, _ = drawn_marks(7, np.random.default_rng(5))
    refiner = ShapeRefiner(SIZE, radii=[0.1, 0.05])
    refiner.mean_shape.copy_(starts[0])
    whole, batched = refiner.prepare(crops, starts), prepare_in_batches(refiner, crops, starts, batch=3)
    pixels = to_indices(starts, SIZE)
    for stage in range(2):
        torch.testing.assert_close(refiner.readings(batched, pixels, stage), refiner.readings(whole, pixels, stage))


def sample_face_crop(size=SIZE):
    gray = to_gray(sample_image())
    box = FaceDetector()(gray)[0]
    return crop_roi(gray, roi_square(box), 0.0, size)[None, None].astype(np.float32) / 255


def test_the_second_stage_runs_only_when_asked_and_onnx_runs_it_as_torch_does():
    plain, refined = Keypointer(DEFAULT_CHECKPOINT, "torch"), Keypointer(DEFAULT_CHECKPOINT, "torch", second_stage=True)
    size = plain.input_size
    face = sample_face_crop(size)
    assert Keypointer(DEFAULT_CHECKPOINT, "torch", second_stage="auto").second_stage and not plain.second_stage
    moves = np.linalg.norm(refined(face) - plain(face), axis=-1)        # crop pixels
    assert moves.max() > 0.1                             # it moves the points...
    assert moves.mean() < 2.0                            # ...by a pixel or so on a face the net has placed
    crops = np.concatenate([face, np.random.default_rng(2).random((2, 1, size, size)).astype(np.float32)])
    onnx = Keypointer(DEFAULT_CHECKPOINT, "onnx", second_stage=True)
    assert np.abs(onnx.raw(crops) - refined.raw(crops)).max() < ONNX_TOLERANCE


def test_the_gate_keeps_the_networks_points_on_faces_with_too_many_spread_heatmaps():
    network, refined = torch.zeros(3, 136), torch.ones(3, 136)
    spreads = torch.ones(3, 68)
    spreads[1, :4] = 3.0                                 # face 1: four spread maps
    spreads[2, :9] = 3.0                                 # face 2: nine
    assert torch.equal(gated(None, spreads, refined, network), refined)
    out = gated((2.5, 5), spreads, refined, network)
    assert torch.equal(out[:2], refined[:2]) and torch.equal(out[2], network[2])
    assert torch.equal(gated((3.0, 1), spreads, refined, network), refined)      # spread over 3.0: none


def test_the_gate_chosen_on_validation_falls_back_on_covered_faces_and_keeps_the_clean_gain():
    import train_refiner
    rng = np.random.default_rng(5)
    targets = torch.tensor(rng.uniform(-0.8, 0.8, (40, 68, 2)), dtype=torch.float32)
    compact, spread = torch.ones(40, 68), torch.ones(40, 68)
    spread[:, 20:32] = 3.0                               # a covered part: twelve maps spread out
    clean = (targets + 0.02, targets + 0.005, compact)  # the second stage helps clean faces...
    covered = (targets + 0.03, targets + 0.05, spread)   # ...and hurts covered ones
    gate, table = train_refiner.choose_gate({"clean": clean, "nose": covered}, targets)
    assert gate is not None and gate[0] < 3.0 and gate[1] <= 12
    assert table[gate] == (table[None][0], train_refiner.mean_nme(covered[0], targets))
    helpful = (targets + 0.03, targets + 0.01, spread)
    assert train_refiner.choose_gate({"clean": clean, "nose": helpful}, targets)[0] is None


def test_gate_faces_framed_as_the_detector_framed_each_one_leave_out_the_missed_ones():
    import data_load
    import train_refiner
    from data_300w import CachedFaces
    from geometry import FRAMING_SCALE
    rng = np.random.default_rng(3)
    keypoints = rng.uniform(50, 110, (3, 68, 2)).astype(np.float32)
    images = rng.integers(0, 255, (3, 160, 160), dtype=np.uint8)
    framings = np.array([[0.0, 0.0, FRAMING_SCALE], [np.nan] * 3, [0.1, 0.0, FRAMING_SCALE]])
    faces = CachedFaces(images, keypoints, ["a", "b", "c"], data_load.eval_transform(SIZE), framings)
    framed = train_refiner.gate_faces(faces, "detector", SIZE)
    assert len(framed) == 2                                               # face 1: the detector missed it
    on_annotation = train_refiner.gate_faces(faces, "annotation", SIZE)
    assert torch.equal(framed[0]["image"], on_annotation[0]["image"])     # (0, 0, 1.8) is the annotation framing
    shifted = framed[1]["keypoints"] - on_annotation[2]["keypoints"]      # the square 0.1 box sides to the right
    assert torch.allclose(shifted[:, 0], torch.full((68,), -0.2 / FRAMING_SCALE), atol=0.03)
    assert torch.allclose(shifted[:, 1], torch.zeros(68), atol=0.03)
    covered = train_refiner.gate_faces(faces, "detector", SIZE, cover="nose")
    assert not torch.equal(covered[0]["image"], framed[0]["image"])
    assert torch.equal(covered[0]["keypoints"], framed[0]["keypoints"])


def test_a_gate_in_the_checkpoint_runs_in_onnx_as_in_torch(tmp_path):
    """A face's heatmaps are compact, noise's spread: a gate between them refines the face alone."""
    config = load_checkpoint(DEFAULT_CHECKPOINT)["config"]["model"]["refiner"]
    state = {k[len("refiner."):]: v for k, v in load_checkpoint(DEFAULT_CHECKPOINT)["model"].items()
             if k.startswith("refiner.")}
    out = str(tmp_path / "gated.pt")
    add_fitted_part(DEFAULT_CHECKPOINT, out, {"refiner": {**config, "gate": [4.0, 10]}}, state, "refiner.")
    size = Keypointer(out, "torch").input_size
    crops = np.concatenate([sample_face_crop(size), np.random.default_rng(2).random((2, 1, size, size)).astype(np.float32)])
    plain, refined = (Keypointer(DEFAULT_CHECKPOINT, "torch").raw(crops),
                      Keypointer(DEFAULT_CHECKPOINT, "torch", second_stage=True).raw(crops))
    gated_torch, gated_onnx = (Keypointer(out, backend, second_stage=True).raw(crops) for backend in ("torch", "onnx"))
    np.testing.assert_array_equal(gated_torch[0], refined[0])
    np.testing.assert_array_equal(gated_torch[1:], plain[1:])
    assert np.abs(gated_onnx - gated_torch).max() < ONNX_TOLERANCE


def test_asking_for_a_second_stage_a_checkpoint_lacks_is_a_clear_error():
    with pytest.raises(CheckpointError, match="train_refiner.py"):
        Keypointer(UDACITY_CHECKPOINT, "torch", second_stage=True)
    assert not Keypointer(UDACITY_CHECKPOINT, "torch", second_stage="auto").second_stage   # 'auto': none to run


def test_dry_run_and_cross_validation_write_nothing_and_bad_options_are_one_line(data_dir, tmp_path):
    env = {**os.environ, "FKP_DATA_DIR": data_dir}
    run = subprocess.run([sys.executable, "train_refiner.py", "--checkpoint", UDACITY_CHECKPOINT, "--dry-run",
                          "--radii", "0.1,0.05", "--rank", "4", "--fine", "2", "--out", str(tmp_path / "x.pt")],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "second stage on every face" in run.stdout and "dry run" in run.stdout and not (tmp_path / "x.pt").exists()
    assert "after stage 2" in run.stdout and "after stage 3" not in run.stdout      # one stage per radius
    folds = subprocess.run([sys.executable, "train_refiner.py", "--checkpoint", UDACITY_CHECKPOINT, "--dry-run",
                            "--folds", "2"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert folds.returncode == 0, folds.stderr
    assert "fold 2/2" in folds.stdout and "cross-validated NME" in folds.stdout and "wrote" not in folds.stdout
    for flag, value in [("--radii", "0.1,-0.05"), ("--rank", "0"), ("--folds", "1"), ("--fine", "0"),
                        ("--occlusion", "1.5")]:
        bad = subprocess.run([sys.executable, "train_refiner.py", flag, value], cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode == 2 and flag in bad.stderr.splitlines()[-1]
    bad = subprocess.run([sys.executable, "train_refiner.py", "--gate-only", "--folds", "2"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--gate-only" in bad.stderr.splitlines()[-1]
    none = subprocess.run([sys.executable, "train_refiner.py", "--checkpoint", UDACITY_CHECKPOINT, "--gate-only",
                           "--dry-run"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert none.returncode == 1 and none.stderr.strip().count("\n") == 0 and "no second stage" in none.stderr
    unframed = subprocess.run([sys.executable, "train_refiner.py", "--checkpoint", UDACITY_CHECKPOINT, "--gate",
                               "--gate-framing", "detector", "--dry-run"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert unframed.returncode == 1 and unframed.stderr.strip().count("\n") == 0 and "--gate-framing" in unframed.stderr
    bad = subprocess.run([sys.executable, "train_refiner.py", "--checkpoint", str(tmp_path / "none.pt")],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "not found" in bad.stderr


def test_a_fitted_stage_added_to_a_checkpoint_rebuilds_runs_and_replaces_an_earlier_one(tmp_path):
    crops, starts, points = drawn_marks(120, np.random.default_rng(3))
    refiner = ShapeRefiner(SIZE, radii=[0.05, 0.03])
    fit_refiner(refiner, crops, starts, points, l2=1.0)
    config = {"refiner": {"input_size": SIZE, "radii": [0.05, 0.03], "grid": refiner.grid,
                          "rank": refiner.rank, "markup": 0}}
    out = str(tmp_path / "with_stage.pt")
    add_fitted_part(UDACITY_CHECKPOINT, out, config, refiner.state_dict(), "refiner.")
    add_fitted_part(out, out, config, refiner.state_dict(), "refiner.")       # again, in place
    assert sum(k.startswith("refiner.") for k in load_checkpoint(out)["model"]) == len(refiner.state_dict())
    face = sample_face_crop()
    torch_kp, onnx_kp = Keypointer(out, "torch", second_stage=True), Keypointer(out, "onnx", second_stage=True)
    assert np.abs(onnx_kp.raw(face) - torch_kp.raw(face)).max() < ONNX_TOLERANCE
    assert np.abs(torch_kp.raw(face) - Keypointer(out, "torch").raw(face)).max() > 0


def test_a_second_stage_fitted_on_finer_crops_takes_them_and_the_network_their_pixel_means(tmp_path):
    # train_refiner.py --fine 2: the refiner reads a crop twice the network's side
    crops, starts, points = drawn_marks(120, np.random.default_rng(6))
    fine = torch.nn.functional.interpolate(crops, scale_factor=2, mode="bilinear")
    refiner = ShapeRefiner(2 * SIZE, radii=[0.05, 0.03])
    fit_refiner(refiner, fine, starts, points, l2=1.0)
    config = {"refiner": {"input_size": 2 * SIZE, "radii": [0.05, 0.03], "grid": refiner.grid,
                          "rank": refiner.rank, "markup": 0}}
    out = str(tmp_path / "fine_stage.pt")
    add_fitted_part(UDACITY_CHECKPOINT, out, config, refiner.state_dict(), "refiner.")
    torch_kp, onnx_kp, plain = (Keypointer(out, "torch", second_stage=True), Keypointer(out, "onnx", second_stage=True),
                                Keypointer(out, "torch"))
    assert (torch_kp.input_size, onnx_kp.input_size, plain.input_size) == (2 * SIZE, 2 * SIZE, SIZE)
    face = sample_face_crop(2 * SIZE)
    pooled = face.reshape(1, 1, SIZE, 2, SIZE, 2).mean((3, 5))
    assert np.abs(onnx_kp.raw(face) - torch_kp.raw(face)).max() < ONNX_TOLERANCE
    torch_kp.model.second_stage = False                  # the same network, on the pixel means
    np.testing.assert_allclose(torch_kp.raw(face), plain.raw(pooled), atol=1e-5)
    with pytest.raises(ValueError, match=f"reads {2 * SIZE} px crops"):
        Keypointer(out, "torch", second_stage=True).raw(pooled)
