"""Measure how the Haar ROI frames the faces of the training split.

For every face the detector finds, framing.measure_framings gives the ROI square that
framing.roi_square cuts (margin DEFAULT_MARGIN, centre shifted HAAR_CENTER_SHIFT widths
down) relative to the keypoint box: centre offset (u, v) in box sides and side r over the
box side. The medians check HAAR_CENTER_SHIFT (v ~ 0) and geometry.FRAMING_SCALE (r);
the spread is what `train.py --framing detector` replays in training.

    python benchmarks/haar_framing.py [--data-dir DIR] [--every 4]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
import data_load  # noqa: E402
import geometry  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from framing import DEFAULT_MARGIN, HAAR_CENTER_SHIFT, measure_framings  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--every", type=int, default=4, help="use every N-th training image")
    args = p.parse_args(argv)
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    csv_file, image_dir = data_files.split_paths(data_dir, "train")
    n = len(data_files.read_keypoints_csv(csv_file)[0])
    dataset = data_load.FacialKeypointsDataset(csv_file, image_dir, indices=range(0, n, args.every))
    framings = measure_framings(dataset, FaceDetector())
    median, spread = np.median(framings, axis=0), framings.std(axis=0)
    lo, hi = np.percentile(framings, [5, 95], axis=0)
    print(f"faces matched: {len(framings)} of {len(dataset)} (margin {DEFAULT_MARGIN}, "
          f"centre shift {HAAR_CENTER_SHIFT})")
    for name, i in (("centre offset x / box side", 0), ("centre offset y / box side", 1),
                    ("ROI side / box side", 2)):
        print(f"{name:28s} median {median[i]:+.3f}  sd {spread[i]:.3f}  5-95% [{lo[i]:+.3f}, {hi[i]:+.3f}]")
    print(f"geometry.FRAMING_SCALE = {geometry.FRAMING_SCALE}")


if __name__ == "__main__":
    main()
