"""Measure how Haar boxes relate to the keypoints on the training split.

Prints, per detected face, the median vertical offset of the keypoint-box centre from
the Haar box centre and the ratio of the keypoint-box side to the Haar box width: the
figures behind detect.HAAR_CENTER_SHIFT and data_load.FRAMING_SCALE.

    python benchmarks/haar_framing.py [--data-dir DIR] [--every 4]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_load  # noqa: E402
from detect import DEFAULT_MARGIN, FaceDetector, to_gray  # noqa: E402
from evaluate import match_box  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--every", type=int, default=4, help="use every N-th training image")
    args = p.parse_args(argv)
    try:
        data_dir = data_load.resolve_data_dir(args.data_dir)
    except data_load.DataError as e:
        sys.exit(f"error: {e}")
    dataset = data_load.FacialKeypointsDataset(*data_load.split_paths(data_dir, "train"))
    detector, rows, missed = FaceDetector(), [], 0
    for i in range(0, len(dataset), args.every):
        item = dataset[i]
        boxes = detector(to_gray(item["image"]))
        j = match_box(boxes, item["keypoints"])
        if j is None:
            missed += 1
            continue
        x, y, w, h = boxes[j]
        lo, hi = item["keypoints"].min(0), item["keypoints"].max(0)
        centre = (lo + hi) / 2
        rows.append(((centre[0] - x - w / 2) / w, (centre[1] - y - h / 2) / w, (hi - lo).max() / w))
    rows = np.array(rows)
    median, spread = np.median(rows, axis=0), rows.std(axis=0)
    padded = 1 + 2 * DEFAULT_MARGIN
    print(f"faces matched: {len(rows)}, missed: {missed}")
    print(f"keypoint-box centre - Haar centre, in Haar widths: x {median[0]:+.3f} (sd {spread[0]:.3f}), "
          f"y {median[1]:+.3f} (sd {spread[1]:.3f})")
    print(f"keypoint-box side / Haar width: {median[2]:.3f} (sd {spread[2]:.3f})")
    print(f"a Haar box padded by {DEFAULT_MARGIN} per side is {padded / median[2]:.2f}x the keypoint box "
          f"(data_load.FRAMING_SCALE = {data_load.FRAMING_SCALE})")


if __name__ == "__main__":
    main()
