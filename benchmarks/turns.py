"""How turned are a training run's faces, source by source, and what would --pose-balance draw?

    python benchmarks/turns.py --datasets 300w --wild-dirs A,B,C [--extra-dirs D] [--pose-balance 0.5 --pose-bins 8]

Takes train.py's data options and reads the same training faces (the validation faces are left out).
Prints each source's |yaw| percentiles from the head-pose fit (pose.head_pose, in the cached crop's
frame), how closely pose.turn_amount follows |yaw|, and the faces per bin of turn with the largest
drawing weight --pose-balance would give (train_data.pose_weights).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_300w  # noqa: E402
import pose  # noqa: E402
import train  # noqa: E402
import train_data  # noqa: E402

PERCENTILES = (50, 90, 99)


def main(argv=None):
    cfg = train.parse_args(argv)
    if train_data.parse_datasets(cfg.datasets) != ["300w"]:
        sys.exit("error: --datasets 300w: the turns are measured on 300-W-layout faces")
    try:
        faces, _ = train_data.wild_sets(cfg)
        extra = len(data_300w.read_sources(cfg.extra_dirs)) if cfg.extra_dirs else 0
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    extra = min(extra, cfg.subset) if cfg.subset else extra
    side = faces.crops.shape[1]
    yaw = np.array([abs((pose.head_pose(k, side, side) or {"yaw": np.nan})["yaw"]) for k in faces.keypoints])
    sources = {"--wild-dirs": slice(0, len(faces) - extra), "--extra-dirs": slice(len(faces) - extra, None)}
    for name, part in sources.items():
        if len(yaw[part]):
            print(f"{name:13s} {len(yaw[part]):5d} faces, |yaw| percentiles {PERCENTILES}: "
                  + ", ".join(f"{v:.1f}" for v in np.nanpercentile(yaw[part], PERCENTILES)) + " degrees")
    turn = pose.turn_amount(faces.keypoints)
    fitted = np.isfinite(yaw)
    print(f"turn_amount against |yaw|: correlation {np.corrcoef(turn[fitted], yaw[fitted])[0, 1]:.3f}")
    bins = train_data.turn_bins(turn, cfg.pose_bins)
    weights = train_data.pose_weights(turn, cfg.pose_balance, cfg.pose_bins)
    print(f"faces per bin of turn (frontal first): {np.bincount(bins, minlength=cfg.pose_bins).tolist()}; "
          f"--pose-balance {cfg.pose_balance}: largest weight {weights.max():.1f}x the mean")


if __name__ == "__main__":
    main()
