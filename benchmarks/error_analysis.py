"""Where the pipeline's error comes from: NME per facial part and by face size.

Runs the whole pipeline (Haar -> ROI -> model) on the 770 test images and splits the
error of the detected faces two ways: the mean point error of each facial part over the
outer-eye distance (the same normalisation as NME), and the NME of each quarter of the
faces sorted by their outer-eye distance in original-image pixels.

    python benchmarks/error_analysis.py [--checkpoint saved_models/keypointnet.pt]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
from checkpoint import CheckpointError  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from markup import FACE_PARTS  # noqa: E402
from evaluate import cnn_pipeline, run_on_test_set  # noqa: E402
from keypointer import UDACITY_CHECKPOINT, Keypointer  # noqa: E402
from metrics import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, point_errors  # noqa: E402


def detected_errors(results, targets):
    """(faces, 68) point errors over the outer-eye distance, and that distance in pixels,
    for the detected faces."""
    found = [i for i, r in enumerate(results) if r["keypoints"] is not None]
    targets = targets[found]
    errors = point_errors(np.stack([results[i]["keypoints"] for i in found]), targets)
    return errors, np.linalg.norm(targets[:, RIGHT_EYE_OUTER] - targets[:, LEFT_EYE_OUTER], axis=-1)


def part_table(results, targets):
    """{part: NME over the detected faces} for each facial part, 'all', and 'systematic': the
    error left in each point's mean offset (the markup's part), averaged over the points."""
    errors, eye_px = detected_errors(results, targets)
    table = {name: float(errors[:, list(indices)].mean()) for name, (indices, _) in FACE_PARTS.items()}
    found = [i for i, r in enumerate(results) if r["keypoints"] is not None]
    offsets = (np.stack([results[i]["keypoints"] for i in found]) - targets[found]) / eye_px[:, None, None]
    table.update(all=float(errors.mean()), systematic=float(np.linalg.norm(offsets.mean(0), axis=-1).mean()))
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=UDACITY_CHECKPOINT, help="the model (default: %(default)s)")
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    args = p.parse_args(argv)
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
        keypointer = Keypointer(args.checkpoint)
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    results = run_on_test_set(data_dir, *cnn_pipeline(keypointer, "haar", FaceDetector()))
    targets = data_files.read_keypoints_csv(data_files.split_paths(data_dir, "test")[0])[1]
    errors, eye_px = detected_errors(results, targets)
    print(f"{len(errors)} detected faces, NME {errors.mean():.4f}")
    print(f"{'part':12s} {'points':>6s} {'NME':>7s} {'share':>6s}")
    for name, (indices, _) in FACE_PARTS.items():
        part = errors[:, list(indices)]
        print(f"{name:12s} {part.shape[1]:6d} {part.mean():7.4f} {part.sum() / errors.sum():6.1%}")
    print(f"without the jaw: NME {errors[:, 17:].mean():.4f}")
    edges = np.quantile(eye_px, [0, 0.25, 0.5, 0.75, 1])
    print("outer-eye distance (px)   NME")
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (eye_px >= lo) & (eye_px <= hi)
        print(f"{lo:7.1f} - {hi:7.1f}        {errors[inside].mean():.4f}")


if __name__ == "__main__":
    main()
