"""Architecture study: how many conv and FC layers, and where the parameters live.

Trains each candidate with the same recipe and epoch budget, then scores it on the
770 test faces (ground-truth framing, one pass, so the nets alone are compared), and
adds the shipped model trained in full. Writes JSON and a Markdown table.

    python benchmarks/architecture_study.py --epochs 5 --json saved_models/architecture_study.json
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import data_files
import models  # noqa: E402
import train  # noqa: E402
from atomic import write_json  # noqa: E402
from evaluate import cnn_pipeline, run_on_test_set, score, time_per_face  # noqa: E402
from keypointer import UDACITY_CHECKPOINT, Keypointer  # noqa: E402

CANDIDATES = {  # name: (arch, input size, constructor arguments, description)
    "oneconv": ("oneconv", 96, {}, "1 conv + 1 FC"),
    "smallnet": ("smallnet", 96, {}, "3 conv (BN) + 2 FC"),
    "naimishnet": ("naimishnet", 96, {}, "NaimishNet as published: 4 conv + 3 FC"),
    "net": ("net", 96, {}, "Net: NaimishNet-style with BN, 4 conv + 2 FC"),
    "keypointnet": ("keypointnet", 96, {}, "KeypointNet: 10 separable conv + 2 FC"),
    "heatmapnet": ("heatmapnet", 96, {"width": [32, 64, 128, 256], "neck": 64},
                   "HeatmapNet: separable conv + pyramid + soft-argmax, no FC"),
    "resnet18": ("resnet18", 96, {}, "ResNet18 from random initialisation (torchvision, 1-channel stem, FC head)"),
}


def measure(checkpoint, data_dir, label, train_seconds, epochs):
    onnx, eager = Keypointer(checkpoint, "onnx"), Keypointer(checkpoint, "torch")
    summary = score(run_on_test_set(data_dir, *cnn_pipeline(onnx, "gt", refine=0)))
    params = models.count_parameters(eager.model)
    return {"name": label, "arch": eager.config["model"]["arch"], "input_size": eager.input_size,
            "epochs": epochs, "params": params, "test_nme": summary["nme"],
            "failure_rate": summary["failure_rate"], "ms_onnx": time_per_face(onnx),
            "ms_torch": time_per_face(eager, runs=50), "train_minutes": train_seconds / 60}


def markdown(rows):
    lines = ["| net | conv params | FC params | total | epochs | train min (2 CPU) | test NME | fail | ms/face ONNX | ms/face eager |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r["params"]
        lines.append(f"| {r['name']} | {p['conv']:,} | {p['fc']:,} | {p['total']:,} | {r['epochs']} | "
                     f"{r['train_minutes']:.1f} | {r['test_nme']:.4f} | {r['failure_rate']:.1%} | "
                     f"{r['ms_onnx']:.2f} | {r['ms_torch']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="Udacity data (default: $FKP_DATA_DIR, else ./data)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per candidate (default: %(default)s)")
    p.add_argument("--only", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES),
                   help="train these candidates; rows of the others are kept from --json")
    p.add_argument("--shipped", default=UDACITY_CHECKPOINT, help="the shipped model's row (default: %(default)s)")
    p.add_argument("--out-dir", default="runs/study", help="training runs go here (default: %(default)s)")
    p.add_argument("--json", default="saved_models/architecture_study.json",
                   help="the table, read for kept rows and rewritten (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        data_dir = data_files.resolve_data_dir(args.data_dir)
    except data_files.DataError as e:
        sys.exit(f"error: {e}")
    rows = []
    if os.path.exists(args.json):                       # keep rows measured earlier
        kept = {CANDIDATES[n][3] for n in CANDIDATES if n not in args.only}
        rows = [r for r in json.load(open(args.json))["rows"] if r["name"] in kept]
    for name in args.only:
        arch, size, kwargs, label = CANDIDATES[name]
        cfg = train.TrainConfig(data_dir=data_dir, out_dir=os.path.join(args.out_dir, name), arch=arch,
                                input_size=size, model_kwargs=kwargs, epochs=args.epochs)
        t0 = time.perf_counter()
        train.train(cfg)
        rows.append(measure(os.path.join(cfg.out_dir, "best.pt"), data_dir, label,
                            time.perf_counter() - t0, args.epochs))
        print(markdown(rows[-1:]), flush=True)
    if os.path.exists(args.shipped):
        from checkpoint import load_checkpoint
        history = load_checkpoint(args.shipped).get("history", [])
        rows.append(measure(args.shipped, data_dir, "HeatmapNet, shipped (full recipe)",
                            sum(h["seconds"] for h in history), len(history)))
    table = markdown(rows)
    print(table)
    write_json(args.json, {"rows": rows, "markdown": table})


if __name__ == "__main__":
    main()
