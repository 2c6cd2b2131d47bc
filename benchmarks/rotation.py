"""Tilted heads: the whole pipeline on test images turned by ±15°, ±30° and ±45°.

Each test image is turned about its centre on a canvas that keeps it whole (edges
replicated), its annotated points with it; then the search and the landmark model run on it
as on any photograph. A face no kept detection covers enters the mean at 0.10, as in
evaluate.py. Rows: detect.py's default search for photographs ('uncovered') and the upright
search alone, so the table shows what the turned search buys.

    python benchmarks/rotation.py [--checkpoint PATH] [--subset 150] [--json out.json]
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files  # noqa: E402
from atomic import write_json  # noqa: E402
from evaluate import load_test_split, score  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from framing import match_box  # noqa: E402
from keypointer import UDACITY_CHECKPOINT, Keypointer  # noqa: E402
from metrics import nme_per_face  # noqa: E402
from pipeline import detect_keypoints  # noqa: E402

ANGLES = (-45, -30, -15, 0, 15, 30, 45)
SEARCHES = ("uncovered", "upright")


def turned(image, keypoints, angle):
    """(image turned by ``angle`` degrees counter-clockwise on a canvas that holds it whole,
    its keypoints turned with it)."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
    size = (int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos)))
    turn[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
    # warpAffine maps pixel indices (centres at integers); keypoints put pixel i at [i, i + 1)
    index_turn = turn.copy()
    index_turn[:, 2] += turn[:, :2] @ [0.5, 0.5] - 0.5
    image = cv2.warpAffine(image, index_turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return image, np.asarray(keypoints, np.float64) @ turn[:, :2].T + turn[:, 2]


def face_result(faces, target):
    """{'nme'} of the kept face on the annotated one, None where none is."""
    boxes = np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
    j = match_box(boxes, target)
    return {"nme": None if j is None else float(nme_per_face(faces[j]["keypoints"], target))}


def rotation_table(data_dir, keypointer, angles=ANGLES, searches=SEARCHES, subset=150):
    """{search: {angle: score summary}} over every ``len / subset``-th test image."""
    dataset = load_test_split(data_dir)
    indices = np.linspace(0, len(dataset) - 1, min(subset or len(dataset), len(dataset))).astype(int)
    items = [dataset[int(i)] for i in indices]
    table = {}
    for search in searches:
        detector = FaceDetector.searching(search)
        table[search] = {}
        for angle in angles:
            results = []
            for item in items:
                image, target = turned(item["image"], item["keypoints"], angle)
                results.append(face_result(detect_keypoints(image, detector, keypointer), target))
            table[search][angle] = score(results)
    return table


def print_table(table):
    angles = list(next(iter(table.values())))
    print(f"{'search':<10} " + " ".join(f"{a:>+17d}°" for a in angles))
    for search, row in table.items():
        print(f"{search:<10} " + " ".join(f"{s['nme']:7.4f} {100 * s['failure_rate']:5.1f}% {100 * s['detection_rate']:3.0f}%"
                                          for s in row.values()))
    print("each cell: NME, failures, faces found")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=UDACITY_CHECKPOINT, help="(default: %(default)s)")
    p.add_argument("--data-dir", help=f"dataset root (default: ${data_files.DATA_DIR_ENV} or ./data)")
    p.add_argument("--subset", type=int, default=150, help="test images, spread over the split; 0: all (default: %(default)s)")
    p.add_argument("--json", help="write {search: {angle: summary}} here")
    args = p.parse_args(argv)
    try:
        table = rotation_table(data_files.resolve_data_dir(args.data_dir), Keypointer(args.checkpoint),
                               subset=args.subset)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    print_table(table)
    if args.json:
        write_json(args.json, table)


if __name__ == "__main__":
    main()
