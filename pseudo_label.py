"""Label Udacity's training frames in 300-W's markup with dlib's 68-point predictor (a teacher),
and write them as a 300-W-layout folder that train.py's --extra-dirs adds to the training set.

    pip install dlib-bin face-recognition-models            # the teacher (as make benchmark)
    python pseudo_label.py --out-dir runs/udacity_dlib [--max-nme 0.08] [--dry-run]

Udacity's own keypoints follow another markup (300-W's README: the nose, brows and jaw sit
differently), so they cannot train the 300-W head as they are. dlib places 300-W's markup;
where its HOG detector finds the face, its points become the frame's label. A frame is kept only
where dlib agrees with Udacity's annotation once the mean difference between the two
markups is taken out (NME of the residual <= --max-nme): that drops dlib's failures without
trusting either markup over the other. Udacity's test frames are never read.
"""
import json
import os
import shutil
import sys
import time

import numpy as np

import data_files
from atomic import write_json
from cli import Parser, number
from data_300w import DLIB_OFFSET, write_pts
from metrics import nme_per_face

MAX_NME = 0.08      # residual NME against Udacity's points above which a frame is dropped
UPSAMPLE = 1        # dlib's HOG detector: upsample each frame once (faces down to ~40 px)


def dlib_points(dlib, detector, predictor, image, truth):
    """dlib's 68 points (project convention) for the face whose box best covers ``truth``'s
    keypoints, or None where the detector finds none over half of them. (Stricter than
    framing.match_box's nearest centre, which finds 5 more faces and keeps one more frame; the
    measured runs used this rule.)"""
    lo, hi = truth.min(0), truth.max(0)
    best, best_overlap = None, 0.0
    for r in detector(image, UPSAMPLE):
        ix = max(0.0, min(hi[0], r.right()) - max(lo[0], r.left()))
        iy = max(0.0, min(hi[1], r.bottom()) - max(lo[1], r.top()))
        overlap = ix * iy / max(1e-6, (hi[0] - lo[0]) * (hi[1] - lo[1]))
        if overlap > best_overlap:
            best, best_overlap = r, overlap
    if best is None or best_overlap < 0.5:
        return None
    shape = predictor(image, best)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32) + DLIB_OFFSET


def markup_residual(teacher, truth):
    """Per-frame NME of ``teacher`` against ``truth`` after removing the mean difference between
    the markups (in each face's eye-aligned frame, scaled by its eye distance)."""
    eye = truth[:, 45] - truth[:, 36]
    scale = np.linalg.norm(eye, axis=1)[:, None, None]
    angle = np.arctan2(eye[:, 1], eye[:, 0])
    c, s = np.cos(-angle)[:, None], np.sin(-angle)[:, None]

    def aligned(p):
        d = (p - truth.mean(1, keepdims=True)) / scale
        return np.stack([c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]], -1)
    diff = aligned(teacher) - aligned(truth)
    return np.linalg.norm(diff - diff.mean(0), axis=-1).mean(1)


def main(argv=None):
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, help="the 300-W-layout folder to write (must not exist)")
    p.add_argument("--data-dir", default="", help="Udacity dataset root (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--max-nme", type=number(float, above=0), default=MAX_NME,
                   help="drop frames whose markup-corrected NME against Udacity's points exceeds this "
                        "(default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="label the first 20 frames only")
    args = p.parse_args(argv)
    if os.path.exists(args.out_dir):
        p.error(f"--out-dir {args.out_dir} exists; give a new folder")
    from benchmarks.dlib_vs_cnn import load_dlib
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir or None)
        csv_file, image_dir = data_files.split_paths(data_dir, "train")
        names, truth = data_files.read_keypoints_csv(csv_file)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    dlib, detector, predictor = load_dlib()
    if args.dry_run:
        names, truth = names[:20], truth[:20]

    t0, found, labels = time.time(), [], []
    for i, name in enumerate(names):
        points = dlib_points(dlib, detector, predictor, data_files.load_image(os.path.join(image_dir, name)), truth[i])
        if points is not None:
            found.append(i)
            labels.append(points)
    if not found:
        sys.exit(f"error: dlib found none of the {len(names)} faces in {image_dir}")
    labels = np.stack(labels)
    residual = markup_residual(labels, truth[found])
    raw = nme_per_face(labels, truth[found])
    kept = [k for k in range(len(found)) if residual[k] <= args.max_nme]

    tmp = args.out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for k in kept:
        name = names[found[k]]
        stem = os.path.splitext(name)[0]
        shutil.copyfile(os.path.join(image_dir, name), os.path.join(tmp, name))
        write_pts(os.path.join(tmp, stem + ".pts"), labels[k])
    summary = {"frames": len(names), "dlib_found": len(found), "kept": len(kept), "max_nme": args.max_nme,
               "raw_nme_median": float(np.median(raw)), "residual_nme_median": float(np.median(residual)),
               "residual_nme_p90": float(np.percentile(residual, 90)), "seconds": round(time.time() - t0, 1)}
    write_json(os.path.join(tmp, "labels.json"), summary)
    os.replace(tmp, args.out_dir)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
