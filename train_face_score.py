"""Fit a heatmap net's face/no-face head: the face score the pipeline and tracker use.

    python train_face_score.py                                  # the in-the-wild model, in place
    python train_face_score.py --checkpoint saved_models/keypointnet.pt --haar-upsample 1
    python train_face_score.py --dry-run                        # a few images, nothing written

The network stays as it is. Crops of the training images are cut where the faces are (the
framings the model trained on, turned by up to MAX_TURN degrees) and where they are not (random
squares away from the face, the Haar cascade's own false detections on Udacity's frames, and
drawn blobs, discs, rings and smooth noise);
a logistic regression on the net's pooled deepest features and heatmap spread learns to tell
them apart, and becomes the checkpoint's ``face_head``. Images are split by image: the held-out
share gives the figures printed. Test images are never used.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

import data_300w
import data_files
import data_load
import geometry
from checkpoint import CheckpointError, add_fitted_part, load_model
from cli import number
from face_detector import FaceDetector, to_gray
from framing import roi_square
from pipeline import crop_roi

POSITIVES_PER_FACE = 2
NEGATIVES_PER_IMAGE = 4
HAAR_MIN_NEIGHBORS = 2      # a loose cascade: many false detections, the hard negatives
HAAR_UPSAMPLE = 0           # --haar-upsample: 0 is the in-the-wild head's recipe (docs/experiments.md)
MAX_TURN = 25.0              # degrees: faces as tilted as the roll alignment leaves them, and more
FRAMING_JITTER = (0.1, 1.6, 2.1)    # centre shift (face sides) and square side range: detector-like framings
L2 = 1e-3                    # ridge penalty on the standardized features
SYNTHETIC_NEGATIVES = 4000  # drawn non-faces: blobs, discs and rings over smooth noise
VAL_FRACTION = 0.1
# The operating point (--face-recall): the head's bias is shifted so that score 0.5
# (keypointer.MIN_FACE_SCORE) keeps this share of the held-out faces; the rest of the margin goes
# to rejecting non-faces.
FACE_RECALL = 0.995
BATCH = 256
WILD_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset")


def overlaps(square, keypoints, most=0.1):
    """Whether ``square`` covers more than ``most`` of the keypoints' box."""
    x, y, side = square
    lo, hi = keypoints.min(0), keypoints.max(0)
    inter = max(0, min(x + side, hi[0]) - max(x, lo[0])) * max(0, min(y + side, hi[1]) - max(y, lo[1]))
    return inter > most * np.prod(hi - lo)


def crops_of(gray, keypoints, size, rng, haar=None):
    """(face crops, non-face crops) of one image with one annotated face."""
    shift, low, high = FRAMING_JITTER
    faces = []
    for _ in range(POSITIVES_PER_FACE):
        square = geometry.framed_square(keypoints, *rng.uniform(-shift, shift, 2), rng.uniform(low, high))
        faces.append(crop_roi(gray, square, float(rng.uniform(-MAX_TURN, MAX_TURN)), size))
    others, (h, w), tries = [], gray.shape, 0
    while len(others) < NEGATIVES_PER_IMAGE and tries < 50:
        tries += 1
        side = rng.uniform(0.15, 0.8) * min(h, w)
        square = (rng.uniform(-0.2 * side, w - 0.8 * side), rng.uniform(-0.2 * side, h - 0.8 * side), side)
        if not overlaps(square, keypoints):
            others.append(crop_roi(gray, square, float(rng.uniform(-MAX_TURN, MAX_TURN)), size))
    if haar is not None:
        for box in haar(gray):
            square = roi_square(box)
            if not overlaps(square, keypoints):
                others.append(crop_roi(gray, square, 0.0, size))
    return faces, others


def synthetic_crop(size, rng):
    """A drawn non-face: smooth noise, then a few blurred ellipses and rings."""
    import cv2
    grain = rng.uniform(2, size / 2)
    noise = cv2.resize(rng.normal(0, 1, (max(2, int(size / grain)),) * 2), (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = rng.uniform(20, 200) + rng.uniform(0, 40) * noise
    for _ in range(rng.integers(1, 4)):
        shape = np.zeros((size, size))
        centre = tuple(int(v) for v in rng.uniform(0.2, 0.8, 2) * size)
        axes = tuple(int(v) for v in rng.uniform(0.1, 0.45, 2) * size)
        cv2.ellipse(shape, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1 if rng.random() < 0.7 else int(rng.integers(1, 6)))
        canvas += rng.uniform(-120, 120) * cv2.GaussianBlur(shape, (0, 0), rng.uniform(0.5, 4))
    return np.clip(canvas, 0, 255).astype(np.uint8)


def hard_negative_detector(upsample=HAAR_UPSAMPLE):
    """The loose cascade that mines false faces: every size down to its window (the relative
    minimum face would skip the small ones), on frames enlarged up to ``2 ** upsample`` times."""
    return FaceDetector(min_neighbors=HAAR_MIN_NEIGHBORS, fallback=None, min_face=0, upsample=upsample)


def collect(data_dir, size, limit, rng, haar_upsample=HAAR_UPSAMPLE):
    """[(image id, crop, label)] from Udacity's training images and 300-W's training folders."""
    sources = []
    train = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"))
    sources += [("udacity", i, train.image, train.keypoints[i]) for i in range(len(train))]
    root = data_300w.find_300w_dir()
    if root is not None:
        photos = data_300w.PhotoFaces(f for folder in WILD_FOLDERS for f in data_300w.scan_300w(os.path.join(root, folder)))
        sources += [("300w", i, photos.image, photos.keypoints[i]) for i in range(len(photos))]
    if limit:
        sources = [sources[i] for i in rng.choice(len(sources), min(limit, len(sources)), replace=False)]
    haar = hard_negative_detector(haar_upsample)
    rows = []
    for n, (kind, i, image, keypoints) in enumerate(sources):
        gray = to_gray(image(i))
        # 300-W's photos may hold faces nobody annotated: no hard negatives from them
        faces, others = crops_of(gray, keypoints, size, rng, haar if kind == "udacity" else None)
        rows += [((kind, i), c, 1) for c in faces] + [((kind, i), c, 0) for c in others]
        if n % 500 == 0:
            print(f"  {n}/{len(sources)} images, {len(rows)} crops", flush=True)
    # grouped by 100 so the held-out split takes some of them too
    rows += [(("drawn", i % 100), synthetic_crop(size, rng), 0) for i in range(min(SYNTHETIC_NEGATIVES, 10 * len(sources)))]
    return rows


def features(model, crops):
    """(N, C + 1): pooled deepest features and the mean heatmap spread of each crop."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(crops), BATCH):
            x = torch.from_numpy(np.stack(crops[start:start + BATCH])[:, None].astype(np.float32) / 255)
            heatmaps, pooled = model.heatmaps_and_features(x)
            out.append(torch.cat([pooled, model.spread(model.probabilities(heatmaps))[:, None]], 1).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_logistic(x, y, l2=L2, steps=200):
    """(weights (C,), bias): ridge logistic regression, fitted on standardized features and
    folded back so it applies to raw ones."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs, ys = torch.from_numpy((x - mean) / std), torch.from_numpy(y.astype(np.float64))
    w, b = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True), torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, ys) + l2 * (w ** 2).sum()
        value.backward()
        return value
    optimizer.step(loss)
    w, b = w.detach().numpy(), float(b.detach())
    return w / std, b - float((w * mean / std).sum())


def operating_point(face_logits, recall):
    """The logit that keeps ``recall`` of the faces at or above it: the shift that puts score 0.5 there."""
    return float(np.quantile(face_logits, 1 - recall, method="lower"))


def auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=os.path.join("saved_models", "keypointnet_wild.pt"),
                   help="a HeatmapNet checkpoint (default: %(default)s)")
    p.add_argument("--out", help="where the checkpoint with its face head goes (default: in place)")
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--images", type=int, default=0, help="use this many training images (default: all)")
    p.add_argument("--haar-upsample", type=number(int, 0, 3), default=HAAR_UPSAMPLE, metavar="N",
                   help="hard negatives from the loose cascade on frames enlarged up to 2**N times (default: %(default)s)")
    p.add_argument("--face-recall", type=number(float, 0.9, 1.0), default=FACE_RECALL, metavar="R",
                   help="keep this share of the held-out faces at score 0.5; higher keeps more faces and "
                        "drops fewer non-faces (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="40 images, everything but the write")
    args = p.parse_args(argv)
    rng, start = np.random.default_rng(args.seed), time.perf_counter()
    try:
        model, config = load_model(args.checkpoint)
        data_dir = data_files.resolve_data_dir(args.data_dir)
    except (CheckpointError, data_files.DataError) as e:
        sys.exit(f"error: {e}")
    if not hasattr(model, "heatmaps_and_features"):
        sys.exit(f"error: {args.checkpoint}: not a heatmap model")
    rows = collect(data_dir, config["model"]["input_size"], 40 if args.dry_run else args.images, rng, args.haar_upsample)
    ids = sorted({r[0] for r in rows})
    held_out = {ids[i] for i in rng.choice(len(ids), max(1, int(VAL_FRACTION * len(ids))), replace=False)}
    x, y = features(model, [r[1] for r in rows]), np.array([r[2] for r in rows])
    val = np.array([r[0] in held_out for r in rows])
    weights, bias = fit_logistic(x[~val], y[~val])
    logit = x[val] @ weights + bias
    shift = operating_point(logit[y[val] == 1], args.face_recall)     # where score 0.5 goes
    print(f"{len(rows)} crops ({y.sum()} faces) from {len(ids)} images; held out {val.sum()} crops of "
          f"{len(held_out)} images: AUC {auc(logit, y[val]):.4f}; at the operating point (logit {shift:.2f}) "
          f"faces kept {(logit[y[val] == 1] >= shift).mean():.4f}, non-faces dropped {(logit[y[val] == 0] < shift).mean():.4f}")
    weights, bias = fit_logistic(x, y)          # the shipped head learns from every image
    bias -= shift
    if args.dry_run:
        print(f"dry run: nothing written ({time.perf_counter() - start:.0f} s)")
        return
    out = args.out or args.checkpoint
    add_fitted_part(args.checkpoint, out, {"face_head": True},
                    {"weight": torch.tensor(weights[None], dtype=torch.float32),
                     "bias": torch.tensor([bias], dtype=torch.float32)}, "face_head.")
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
