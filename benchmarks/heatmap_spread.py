"""How sharp a heatmap net's heatmaps are: peak probability and spread, per checkpoint.

Runs each checkpoint on every 8th test face (crop framed on the annotation) and prints
the median, over faces and keypoints, of the largest cell probability and of the
spread: the root-mean-square distance of a heatmap's mass from its mean, in cells.

    python benchmarks/heatmap_spread.py saved_models/keypointnet.pt [runs/other/best.pt ...]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
import data_load  # noqa: E402
import geometry  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from face_detector import to_gray  # noqa: E402
from keypointer import Keypointer  # noqa: E402
from metrics import heatmap_spread  # noqa: E402
from visualize import keypoint_heatmaps  # noqa: E402

STRIDE = 8   # every 8th test face: 97 faces, 6,596 heatmaps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", help="HeatmapNet checkpoints to compare")
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    args = p.parse_args(argv)
    try:
        test = data_load.FacialKeypointsDataset(*data_files.split_paths(data_files.resolve_data_dir(args.data_dir), "test"))
        nets = [Keypointer(path, backend="torch") for path in args.checkpoints]
    except (data_files.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    for path, net in zip(args.checkpoints, nets):
        if not hasattr(net.model, "heatmaps"):
            sys.exit(f"error: {path}: {net.config['model']['arch']} has no heatmaps")
        peaks, spreads = [], []
        for i in range(0, len(test), STRIDE):
            item = test[i]
            square = geometry.face_square(item["keypoints"], net.framing_scale)   # the checkpoint's framing
            crop = geometry.crop_square_array(to_gray(item["image"]), square, net.input_size)
            prob = keypoint_heatmaps(net.model, torch.from_numpy(crop[None, None].astype(np.float32) / 255))
            peaks.append(prob.reshape(len(prob), -1).max(1))
            spreads.append(heatmap_spread(prob))
        print(f"{path}: median peak probability {np.median(peaks):.3f}, "
              f"median spread {np.median(spreads):.2f} cells ({len(peaks)} faces)")


if __name__ == "__main__":
    main()
