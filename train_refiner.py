"""Fit a heatmap net's second stage (refiner.ShapeRefiner) on the net's own training faces.

    python train_refiner.py                                  # the in-the-wild model, in place
    python train_refiner.py --checkpoint saved_models/keypointnet.pt
    python train_refiner.py --dry-run                        # a few faces, nothing written
    python train_refiner.py --radii 0.1,0.07 --rank 16 --folds 5  # other settings, cross-validated

The network stays as it is. Its training faces (the first dataset of its training config, the
same split) are cut PASSES times with the training augmentation (the detector's framings,
turns, light, degradations, occlusion); the network places its points on each crop; the refiner learns,
stage by stage, to move them onto the annotation. With ``--fine K`` the crops are K times the
network's side: the refiner reads them, the network their K x K pixel means, and inference cuts
crops that size (it gained nothing at K = 2: docs/experiments.md). The faces held out for
validation give the figures printed; test images are never used. Inference uses it whenever the
checkpoint has one (``--no-second-stage`` skips it). ``--gate`` also chooses, on those faces clean
and with a part covered, a gate that leaves the network's points on faces whose heatmaps spread
(refiner.gated); ``--gate-only`` chooses one for a checkpoint's fitted stage, and
``--gate-framing detector`` chooses it on the faces as the detector framed them.
"""
import argparse
import copy
import dataclasses
import random
import sys
import time

import numpy as np
import torch

import cli
import data_300w
import data_load
import train_data
from checkpoint import CheckpointError, add_fitted_part, load_model
from markup import COVERED_PARTS, NUM_KEYPOINTS
from metrics import nme_per_face
from refiner import RADII, RANK, ShapeRefiner, fit_refiner, gated
from train import TrainConfig

PASSES = 10          # augmented crops of each training face: more passes, more varied starts
L2 = 1000.0          # ridge penalty on each stage's map (features scaled to unit length per point)
FINE = 1             # the refiner's crop side / the network's
BATCH = 256
DRY_RUN_FACES = 64
# The gate (refiner.gated), chosen on the validation faces, clean and with each part of
# markup.COVERED_PARTS covered: the lowest covered NME among the gates that cost the clean faces
# at most GATE_CLEAN_COST. Spreads in heatmap cells, points of the 68.
GATE_SPREADS = tuple(np.round(np.arange(2.0, 3.65, 0.1), 2))
GATE_POINTS = (3, 5, 7, 10, 14)
GATE_CLEAN_COST = 1e-4
GATE_COSTS_SHOWN = (3e-4, 5e-4, 1e-3)   # clean costs whose best gate is printed beside the choice


def crops_and_points(dataset, passes, limit=0):
    """(crops (N, 1, S, S), true points (N, 68, 2) in the [-1, 1] frame) from ``passes``
    draws of each face of ``dataset`` (a random augmentation each, if it has one)."""
    count = min(limit or len(dataset), len(dataset))
    crops, points = [], []
    for _ in range(passes):
        for i in range(count):
            item = dataset[i]
            crops.append(item["image"])
            points.append(item["keypoints"])
    return torch.stack(crops), torch.stack(points)


@torch.no_grad()
def in_batches(call, *tensors):
    """``call`` on BATCH rows of the tensors at a time, the results concatenated."""
    return torch.cat([call(*(t[i:i + BATCH] for t in tensors)) for i in range(0, len(tensors[0]), BATCH)])


def network_points(model, crops):
    """(points (N, 68, 2), point spreads (N, 68)): the network's own (no second stage), in batches."""
    def points_and_spreads(batch):
        prob = model.probabilities(model.heatmaps(batch))
        return torch.cat([model.decode(prob), model.point_spreads(prob)], 1)
    out = in_batches(points_and_spreads, crops)
    return out[:, :-NUM_KEYPOINTS].reshape(len(crops), -1, 2), out[:, -NUM_KEYPOINTS:]


def gated_nme(gate, network, refined, spreads, targets):
    return mean_nme(gated(gate, spreads, refined.flatten(1), network.flatten(1)).reshape(network.shape), targets)


def choose_gate(conditions, targets):
    """(gate or None, {gate: (clean NME, mean covered NME)}) from conditions {name: (network
    points, refined points, point spreads)}, 'clean' and the covered parts, all of the same faces."""
    def scores(gate):
        nmes = {name: gated_nme(gate, *outputs, targets) for name, outputs in conditions.items()}
        return nmes.pop("clean"), float(np.mean(list(nmes.values())))
    table = {None: scores(None)}
    table.update({(s, k): scores((s, k)) for s in GATE_SPREADS for k in GATE_POINTS})
    return best_gate(table, GATE_CLEAN_COST), table


def best_gate(table, clean_cost):
    """The gate of ``table`` with the lowest covered NME among those costing clean faces at most ``clean_cost``."""
    allowed = [g for g, (clean, _) in table.items() if clean <= table[None][0] + clean_cost]
    return min(allowed, key=lambda g: table[g][1])


class DetectorFramed(torch.utils.data.Dataset):
    """Cached faces (train_data.wild_sets' validation set), each cut as the detector framed it
    (its own row of ``faces.framings``), with ``cover`` (a part of COVERED_PARTS) covered first;
    the faces the detector missed are left out."""

    def __init__(self, faces, size, cover=None):
        self.faces, self.size, self.cover = faces, size, cover
        self.found = np.flatnonzero(np.isfinite(faces.framings).all(1))

    def __len__(self):
        return len(self.found)

    def __getitem__(self, k):
        i = self.found[k]
        steps = [data_load.CoverPart(self.cover)] if self.cover else []
        steps += [data_load.FaceCrop(self.size, framings=self.faces.framings[i:i + 1]),
                  data_load.Normalize(), data_load.ToTensor()]
        image, keypoints = data_load.Compose(steps)(self.faces.image(i), self.faces.keypoints[i].copy())
        return {"image": image, "keypoints": keypoints}


def gate_faces(val_set, framing, size, cover=None):
    """The validation faces the gate is chosen on: framed on their annotation or, with
    ``framing`` 'detector', as the detector framed each; ``cover``: a part covered."""
    if framing == "detector":
        return DetectorFramed(val_set, size, cover)
    dataset = copy.copy(val_set)
    if cover:
        dataset.transform = data_load.Compose([data_load.CoverPart(cover), val_set.transform])
    return dataset


def validation_gate(model, refiner, val_set, limit, framing="annotation"):
    """The gate for ``refiner`` on the validation faces (see GATE_CLEAN_COST), framed by
    ``framing``, printed with what it does there, clean and covered."""
    conditions, targets = {}, None
    for name in ("clean", *COVERED_PARTS):
        dataset = gate_faces(val_set, framing, refiner.size, None if name == "clean" else name)
        crops, targets = crops_and_points(dataset, 1, limit)
        shapes, spreads = network_points(model, crops)
        conditions[name] = shapes, in_batches(refiner, crops, shapes), spreads
    network = {name: mean_nme(c[0], targets) for name, c in conditions.items()}
    gate, table = choose_gate(conditions, targets)
    print(f"validation NME ({len(targets)} held-out faces, framed on their {framing}), clean / with a part covered "
          f"(mean of {len(COVERED_PARTS)}):\n"
          f"  network alone               {network.pop('clean'):.4f} / {np.mean(list(network.values())):.4f}\n"
          f"  second stage on every face  {table[None][0]:.4f} / {table[None][1]:.4f}")
    if gate is not None:
        print(f"  second stage, gated         {table[gate][0]:.4f} / {table[gate][1]:.4f}: on faces with fewer "
              f"than {gate[1]} heatmaps spread over {gate[0]} cells")
    for cost in GATE_COSTS_SHOWN:           # what a looser clean cost would buy
        if (other := best_gate(table, cost)) not in (None, gate):
            print(f"  (at a clean cost up to {cost}: {table[other][0]:.4f} / {table[other][1]:.4f}, "
                  f"{other[1]} heatmaps over {other[0]} cells)")
    return gate


def mean_nme(points, targets):
    return float(nme_per_face(points.numpy(), targets.numpy()).mean())


def radii_option(text):
    """'0.07,0.05,0.035' -> (0.07, 0.05, 0.035): one or more positive spacings."""
    try:
        radii = tuple(float(r) for r in text.split(","))
    except ValueError:
        radii = ()
    if not radii or min(radii) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive numbers separated by commas")
    return radii


def cross_validate(refiner, crops, shapes, targets, l2, folds, faces):
    """Print each fold's held-out NME, network and refined: crop i is of face i % faces, and a
    face's crops stay in one fold, so each fold is scored on faces its fit never saw."""
    fold_of = torch.arange(len(crops)) % faces % folds
    scores = []
    for fold in range(folds):
        held, kept = fold_of == fold, fold_of != fold
        fit_refiner(refiner, crops[kept], shapes[kept], targets[kept], l2)
        refined = in_batches(refiner, crops[held], shapes[held])
        scores.append((mean_nme(shapes[held], targets[held]), mean_nme(refined, targets[held])))
        print(f"fold {fold + 1}/{folds}: network {scores[-1][0]:.4f}, with the second stage {scores[-1][1]:.4f}",
              flush=True)
    network, refined = np.mean(scores, 0)
    print(f"cross-validated NME ({folds} folds of the training faces' crops): network {network:.4f}, "
          f"with the second stage {refined:.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="saved_models/keypointnet_wild.pt",
                   help="a HeatmapNet checkpoint with its training config (default: %(default)s)")
    p.add_argument("--out", help="where the checkpoint with its refiner goes (default: in place)")
    p.add_argument("--passes", type=cli.number(int, low=1), default=PASSES, help="augmented crops per training face (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seeds the augmentation (default: %(default)s)")
    p.add_argument("--radii", type=radii_option, default=RADII,
                   help="each stage's cell spacing, in eye distances, comma-separated (default: %(default)s)")
    p.add_argument("--rank", type=cli.number(int, low=1), default=RANK, help="each stage's map's rank (default: %(default)s)")
    p.add_argument("--l2", type=cli.number(float, low=0), default=L2, help="ridge penalty (default: %(default)s)")
    p.add_argument("--fine", type=cli.number(int, low=1, high=4), default=FINE,
                   help="the refiner reads a crop this many times the network's side; 1: the network's "
                        "own crop (default: %(default)s)")
    p.add_argument("--folds", type=cli.number(int, low=2), default=0,
                   help="cross-validate these settings instead: fit on all folds of the training faces but one, "
                        "score the one left out, in turn; nothing written")
    p.add_argument("--extra-dirs", default=None,
                   help="fit on these 300-W-layout folders' faces as well (train.py's --extra-dirs; never "
                        "validation); default: the checkpoint's own")
    p.add_argument("--occlusion", type=cli.number(float, low=0, high=1), default=None,
                   help="cover part of this share of the crops (train.py's --occlusion); default: the "
                        "checkpoint's own")
    p.add_argument("--gate", action="store_true",
                   help="refine only faces whose heatmaps are compact (a covered part spreads them), the gate "
                        "chosen on the validation faces; the default's LFPW test with a part covered: NME "
                        "0.0703 -> 0.0657, failures 8.9 -> 6.5 %%; clean faces through the pipeline: validation "
                        "+0.0005 (default: every face refined)")
    p.add_argument("--gate-framing", choices=("annotation", "detector"), default="annotation",
                   help="choose the gate on the validation faces framed on their annotation, or each as "
                        "the detector framed it, as the pipeline cuts them (on the default, 'detector' finds no "
                        "gate within the clean cost: every gate that helps covered faces costs clean ones 0.0004 "
                        "or more) (default: %(default)s)")
    p.add_argument("--gate-only", action="store_true",
                   help="keep the checkpoint's fitted second stage and choose its gate alone (seconds)")
    p.add_argument("--dry-run", action="store_true", help=f"{DRY_RUN_FACES} faces, one pass, nothing written")
    args = p.parse_args(argv)
    if args.gate_only and args.folds:
        p.error("--gate-only: not with --folds")
    args.gate = args.gate or args.gate_only
    start = time.perf_counter()
    random.seed(args.seed)           # the augmentation draws from random
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    try:
        model, config = load_model(args.checkpoint)
        if not hasattr(model, "has_second_stage") or "train" not in config:
            raise CheckpointError(f"{args.checkpoint}: not a heatmap net with its training config")
        model.markup = 0                 # the first dataset's head
        if args.gate_only and not model.has_second_stage():
            raise CheckpointError(f"{args.checkpoint} has no second stage to gate (fit one without --gate-only)")
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        cfg = TrainConfig(**{k: v for k, v in config["train"].items() if k in known})
        if args.extra_dirs is not None:
            cfg = dataclasses.replace(cfg, extra_dirs=args.extra_dirs)
        if args.occlusion is not None:
            cfg = dataclasses.replace(cfg, occlusion=args.occlusion)
        if args.dry_run:             # a small slice of the data, so no long preparation either
            cfg = dataclasses.replace(cfg, subset=2 * DRY_RUN_FACES)
        first = train_data.parse_datasets(cfg.datasets)[0]
        fine = dataclasses.replace(cfg, input_size=cfg.input_size * args.fine)
        train_set, val_set = (train_data.udacity_sets(fine) if first == "udacity" else
                              train_data.wild_sets(fine, cache_size=data_300w.CACHE_SIZE * args.fine))
        framings = getattr(val_set, "framings", None)     # the Udacity sets have none
        if args.gate and args.gate_framing == "detector" and (framings is None or not np.isfinite(framings).any()):
            raise ValueError("--gate-framing detector: this checkpoint's validation faces carry no detector framings "
                             "(in-the-wild data trained with --framing detector only)")
    except (CheckpointError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    limit, passes = (DRY_RUN_FACES, 1) if args.dry_run else (0, args.passes)
    if args.gate_only:
        return write_refiner(args, model.refiner, validation_gate(model, model.refiner, val_set, limit, args.gate_framing), start)
    crops, targets = crops_and_points(train_set, passes, limit)
    refiner = ShapeRefiner(input_size=crops.shape[-1], radii=args.radii, rank=args.rank, markup=0)
    print(f"{len(crops)} training crops ({passes} per face) in {time.perf_counter() - start:.0f} s", flush=True)
    shapes, _ = network_points(model, crops)
    print(f"training NME: network {mean_nme(shapes, targets):.4f}", flush=True)
    if args.folds:
        cross_validate(refiner, crops, shapes, targets, args.l2, args.folds, len(crops) // passes)
        return
    fit_refiner(refiner, crops, shapes, targets, args.l2,
                log=lambda stage, points: print(f"  after stage {stage + 1}: {mean_nme(points, targets):.4f}", flush=True))
    write_refiner(args, refiner, validation_gate(model, refiner, val_set, limit, args.gate_framing), start)


def write_refiner(args, refiner, gate, start):
    """The checkpoint with ``refiner`` and, with --gate, its gate, to --out or in place."""
    if args.dry_run:
        print(f"dry run: nothing written ({time.perf_counter() - start:.0f} s)")
        return
    refiner_config = {"input_size": refiner.size, "radii": list(refiner.radii), "grid": refiner.grid,
                      "rank": refiner.rank, "markup": refiner.markup,
                      "gate": [float(gate[0]), int(gate[1])] if args.gate and gate else None}
    out = args.out or args.checkpoint
    add_fitted_part(args.checkpoint, out, {"refiner": refiner_config}, refiner.state_dict(), "refiner.")
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
