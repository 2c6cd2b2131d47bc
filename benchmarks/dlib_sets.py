"""Our pipeline against dlib's on three sets of 300-W photographs: the validation faces that
train.py holds out of 300-W's training folders (seed 0, its default split), LFPW's training
photographs and LFPW's test set. Is dlib's lead on LFPW test the same elsewhere?

    python benchmarks/dlib_sets.py [--checkpoint saved_models/keypointnet_wild.pt] [--json out.json]

Each pipeline uses its own detector (dlib_vs_cnn.py); ours runs as detect.py does, with the
checkpoint's second stage. A missed face enters the NME at 0.10; "found" is the NME over the
faces the pipeline found. Accuracy only: run dlib_vs_cnn.py for time.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_300w  # noqa: E402
from atomic import write_json  # noqa: E402
from checkpoint import CheckpointError  # noqa: E402
from benchmarks.dlib_vs_cnn import dlib_pipeline, load_dlib, results_side_by_side  # noqa: E402
from evaluate import cnn_pipeline, score  # noqa: E402
from face_detector import FaceDetector  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT, Keypointer  # noqa: E402

TRAINING_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset")   # the model card's --wild-dirs
VAL_FRACTION, SEED = 0.1, 0                                      # train.TrainConfig's defaults


def photograph_sets(root):
    """{name: PhotoFaces}: the held-out validation faces, LFPW's training and test photographs."""
    faces = data_300w.read_sources([os.path.join(root, d) for d in TRAINING_FOLDERS])
    _, val_idx = data_300w.split_by_image(faces, VAL_FRACTION, SEED)
    lfpw = {part: data_300w.read_sources([os.path.join(root, "lfpw", part)]) for part in ("trainset", "testset")}
    return {"validation faces (held out of training)": data_300w.PhotoFaces([faces[i] for i in val_idx]),
            "LFPW training photographs": data_300w.PhotoFaces(lfpw["trainset"]),
            "LFPW test": data_300w.PhotoFaces(lfpw["testset"])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="the in-the-wild CNN (default: %(default)s)")
    p.add_argument("--300w-root", dest="root", help=f"300-W folder (default: ${data_300w.WILD_DIR_ENV} "
                                                    "or ../shared/data/300w)")
    p.add_argument("--json", help="also write the table here")
    args = p.parse_args(argv)
    root = args.root or data_300w.find_300w_dir()
    if not root or not os.path.isdir(root):
        sys.exit(f"error: no 300-W folder: pass --300w-root or set ${data_300w.WILD_DIR_ENV}")
    dlib, detector, predictor = load_dlib()
    try:
        sets = photograph_sets(root)
        ours = cnn_pipeline(Keypointer(args.checkpoint, "onnx", second_stage="auto"), "haar", FaceDetector())
    except (data_300w.DataError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    pipelines = {"ours": ours, "dlib": dlib_pipeline(dlib, detector, predictor)}
    print("| photographs | faces | ours: NME / failures / found | dlib: NME / failures / found |\n|---|---:|---|---|")
    table = {}
    for name, dataset in sets.items():
        table[name] = {p: score(rows) for p, rows in results_side_by_side(dataset, pipelines).items()}
        cells = [f"{s['nme']:.4f} / {s['failure_rate']:.2%} / " + ("none found" if s["nme_detected"] is None
                                                                else f"{s['nme_detected']:.4f}") for s in table[name].values()]
        print(f"| {name} | {len(dataset)} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        write_json(args.json, {"checkpoint": args.checkpoint, "sets": table})


if __name__ == "__main__":
    main()
