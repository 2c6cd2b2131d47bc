"""Would a second look at each face drop the last false face? Mirror and re-framing rules.

    python benchmarks/face_score_gates.py [--every 2] [--checkpoint saved_models/keypointnet_wild.pt]

Every face the default search keeps (`detect.py`'s: both wider searches where the upright one
finds none, then the face score) on the detection benchmark's sets (benchmarks/detection.py) is
looked at twice more: cut again on its own keypoints, and that crop mirrored. Each rule below
combines those scores into one; the table gives, per rule, the annotated faces it would lose
and the false faces on the face-free images it would keep (both at score 0.5).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
from face_detector import FaceDetector, to_gray  # noqa: E402
from framing import match_box  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, MIN_FACE_SCORE, Keypointer  # noqa: E402
from pipeline import crop_roi, detect_keypoints, keypoint_roi  # noqa: E402
from benchmarks.detection import annotated_sets, face_free_images  # noqa: E402

RULES = {"score (shipped)": lambda s, m, r: s,
         "min(score, mirrored)": lambda s, m, r: min(s, m),
         "mean(score, mirrored)": lambda s, m, r: (s + m) / 2,
         "geometric mean(score, mirrored)": lambda s, m, r: np.sqrt(s * m),
         "min(score, mirrored, re-framed)": lambda s, m, r: min(s, m, r)}


def second_looks(gray, face, keypointer):
    """(re-framed score, mirrored score) of one face: its crop cut again on its keypoints."""
    square, angle = keypoint_roi(face["keypoints"], keypointer.framing_scale)
    crop = crop_roi(gray, square, angle, keypointer.input_size)[None, None].astype(np.float32) / 255
    _, scores = keypointer.predict(np.concatenate([crop, crop[..., ::-1]]))
    return float(scores[0]), float(scores[1])


def looks(items, detector, keypointer):
    """[(is an annotated face, score, mirrored, re-framed)] for every face kept in ``items``."""
    rows = []
    for image, faces in items:
        gray = to_gray(image)
        for face in detect_keypoints(gray, detector, keypointer):
            matched = any(match_box(np.array([face["box"]], np.float64), kp) is not None for kp in faces)
            reframed, mirrored = second_looks(gray, face, keypointer)
            rows.append((matched, face["score"], mirrored, reframed))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--every", type=int, default=2, help="use every Nth image of each set (default: %(default)s)")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="(default: %(default)s)")
    args = p.parse_args(argv)
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    keypointer, detector = Keypointer(args.checkpoint), FaceDetector.searching("if-none")
    faces = {name: [r for r in looks(items, detector, keypointer) if r[0]]
             for name, items in annotated_sets(data_dir, args.every).items()}
    false = looks([(image, []) for image in face_free_images(data_dir)], detector, keypointer)
    print(f"faces kept by the default search: {', '.join(f'{k} {len(v)}' for k, v in faces.items())}; "
          f"false faces: {len(false)}")
    for rule, combine in RULES.items():
        lost = {k: sum(combine(*r[1:]) < MIN_FACE_SCORE for r in v) for k, v in faces.items()}
        kept = [combine(*r[1:]) for r in false if combine(*r[1:]) >= MIN_FACE_SCORE]
        lowest = min(combine(*r[1:]) for v in faces.values() for r in v)
        print(f"{rule:33s} faces lost: {', '.join(f'{k} {n}' for k, n in lost.items())}; lowest face {lowest:.3f}; "
              f"false faces kept {len(kept)}; false scores {', '.join(f'{combine(*r[1:]):.3f}' for r in false)}")


if __name__ == "__main__":
    main()
