"""Does the landmark model know a face when it sees one? Heatmap spread on faces and non-faces.

    python benchmarks/face_score.py [--checkpoint saved_models/keypointnet_wild.pt]

A HeatmapNet puts one probability map per keypoint over its crop. On a face each map is a
compact peak; on a crop without a face the maps spread out. This measures the mean spread
(RMS distance of a map's mass from its mean, in cells, averaged over the 68 maps) on:
- faces: every 4th Udacity test face framed on its annotation, and LFPW's test photographs
  framed by the Haar ROI (where a 300-W copy exists);
- non-faces: a crop of each of those Udacity frames away from the face, and random crops of
  scikit-image's sample images that show no face (a cat, text, cells, ...; not its coins or cameraman);
and the AUC of telling the two apart by spread alone (1.0: a threshold separates them).

``--write`` stores the face-score calibration in the checkpoint's config ('face_score': the
spread scoring 0.5 halfway between the faces' 99th percentile and the non-faces' 1st, and a
scale putting those two at scores 0.88 and 0.12; keypointer.face_score).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_300w  # noqa: E402
import data_files
import data_load  # noqa: E402
import geometry  # noqa: E402
from checkpoint import CheckpointError, update_config  # noqa: E402
from face_detector import FaceDetector, to_gray  # noqa: E402
from framing import roi_square  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, Keypointer  # noqa: E402
from benchmarks.samples import gray_sample  # noqa: E402

SAMPLES = ("astronaut", "brick", "cat", "cell", "checkerboard", "chelsea", "clock", "coffee",
           "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
           "microaneurysms", "moon", "page", "retina", "rocket", "text")
CROPS_PER_SAMPLE = 8
MIN_SCALE = 0.05        # cells: the steepest score, where faces and non-faces overlap


def mean_spread(keypointer, crops):
    return keypointer.raw_and_spread(np.stack(crops)[:, None].astype(np.float32) / 255)[1]


def calibration(face, other):
    """The face score's calibration from the spreads of faces and of non-faces."""
    face_high, other_low = np.percentile(face, 99), np.percentile(other, 1)
    return {"at_half": float((face_high + other_low) / 2), "scale": float(max(MIN_SCALE, (other_low - face_high) / 4))}


def sample_crops(size, rng):
    """Random squares of scikit-image's samples (the astronaut's face is avoided: lower half)."""
    crops = []
    for name in SAMPLES:
        gray = gray_sample(name)
        h, w = gray.shape
        top = h // 2 if name == "astronaut" else 0
        for _ in range(CROPS_PER_SAMPLE):
            side = rng.uniform(0.2, 0.5) * min(h, w)
            crops.append(geometry.crop_square_array(gray, (rng.uniform(0, w - side), rng.uniform(top, h - side), side), size))
    return crops


def udacity_crops(data_dir, size, rng):
    """(faces framed on their annotation, crops of the same frames away from the face)."""
    test = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "test"))
    faces, others = [], []
    for i in range(0, len(test), 4):
        gray = to_gray(test.image(i))
        x, y, side = geometry.face_square(test.keypoints[i])
        faces.append(geometry.crop_square_array(gray, (x, y, side), size))
        h, w = gray.shape
        for _ in range(20):
            nx, ny = rng.uniform(-side / 2, w - side / 2), rng.uniform(-side / 2, h - side / 2)
            if abs(nx - x) > 0.7 * side or abs(ny - y) > 0.7 * side:
                others.append(geometry.crop_square_array(gray, (nx, ny, side), size))
                break
    return faces, others


def lfpw_crops(size):
    root = data_300w.find_300w_dir()
    if root is None:
        return []
    photos, detector, crops = data_300w.PhotoFaces(data_300w.scan_300w(os.path.join(root, "lfpw", "testset"))), FaceDetector(), []
    for i in range(len(photos)):
        gray = to_gray(photos[i]["image"])
        boxes = detector(gray)
        if len(boxes):
            crops.append(geometry.crop_square_array(gray, roi_square(boxes[0]), size))
    return crops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="a HeatmapNet checkpoint (default: %(default)s)")
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--write", action="store_true", help="store the measured calibration in the checkpoint")
    args = p.parse_args(argv)
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
        keypointer = Keypointer(args.checkpoint, "torch")
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    if keypointer.raw_and_spread(np.zeros((1, 1, keypointer.input_size, keypointer.input_size)))[1] is None:
        sys.exit(f"error: {args.checkpoint}: not a heatmap model, it has no heatmap spread")
    size, rng = keypointer.input_size, np.random.default_rng(0)
    faces, others = udacity_crops(data_dir, size, rng)
    sets = {"Udacity test faces": faces, "LFPW test faces (Haar ROI)": lfpw_crops(size),
            "Udacity frames away from the face": others, "scikit-image samples": sample_crops(size, rng)}
    spreads = {name: mean_spread(keypointer, crops) for name, crops in sets.items() if crops}
    print(f"{'crops':36s} {'n':>4s}  mean spread, cells: min  p1   p50  p99  max")
    for name, s in spreads.items():
        print(f"{name:36s} {len(s):4d}  " + " ".join(f"{v:4.2f}" for v in np.percentile(s, [0, 1, 50, 99, 100])))
    face = np.concatenate([s for n, s in spreads.items() if "faces" in n])
    other = np.concatenate([s for n, s in spreads.items() if "faces" not in n])
    print(f"AUC, faces against non-faces by spread: {(face[:, None] < other[None]).mean():.4f}")
    fit = calibration(face, other)
    print(f"calibration: score 0.5 at spread {fit['at_half']:.3f} cells, scale {fit['scale']:.3f}")
    if args.write:
        update_config(args.checkpoint, face_score=fit)
        print(f"wrote the calibration into {args.checkpoint}")


if __name__ == "__main__":
    main()
