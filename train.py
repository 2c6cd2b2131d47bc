"""Train a keypoint CNN: `python train.py --help`; every hyper-parameter is in TrainConfig.

The validation split is held out of the training data, never the test set: by person from
Udacity's CSV, by image from 300-W-layout folders (train_data.py); it is the first dataset's
(--datasets). Validation loss and NME measure generalisation to faces the model has not seen.
Each epoch writes ``last.pt`` (for --resume), ``best.pt`` (lowest validation loss), ``history.csv``
and ``loss.png`` into --out-dir; checkpoints are replaced atomically.
"""
import argparse
import copy
import csv
import dataclasses
import os
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

import cli
import data_files
import geometry
import distributed
import models
from atomic import write_atomic
from checkpoint import load_checkpoint, load_network_weights, rng_state, save_checkpoint, set_rng_state
from losses import compute_loss, make_loss
from metrics import nme_per_face
from train_data import make_loaders, parse_datasets


@dataclass
class TrainConfig:
    """Every knob of a run, with its default (the shipped model's recipe)."""
    datasets: str = "udacity"     # udacity | 300w | 300w+udacity | udacity+300w: what to train on;
                                  # with two, one output head per markup (the first is the
                                  # checkpoint's default head and the one validation scores)
    data_dir: str = ""            # Udacity dataset root; empty: $FKP_DATA_DIR, else ./data
    wild_dirs: str = ""           # 300w: comma-separated 300-W-layout folders or dlib .xml files
    extra_dirs: str = ""          # 300w: more such folders for training only, never validation
                                  # (e.g. pseudo_label.py's teacher-labelled Udacity frames)
    cache_dir: str = ""           # where 300-W face crops are cached; empty: $FKP_CACHE_DIR, else ./cache
    out_dir: str = "runs/heatmapnet"  # last.pt, best.pt, history.csv and loss.png go here
    arch: str = "heatmapnet"      # one of models.ARCHITECTURES
    input_size: int = 80          # side of the square grayscale crop, pixels
    backbone: str = ""            # resnet18 | resnet50: a torchvision ResNet with a keypoint head
                                  # (transfer learning; overrides --arch)
    pretrained: bool = False      # start the ResNet from torchvision's ImageNet weights (read from
                                  # the torch cache, downloaded there on a machine with internet)
    freeze_backbone: bool = False  # train the ResNet's keypoint head alone
    model_kwargs: dict = None     # constructor arguments (JSON) beyond the architecture's defaults
                                  # (models.HeatmapNet's are the Udacity model's)
    epochs: int = 250             # passes over the training set (the model cards give each
                                  # shipped recipe's wall time)
    batch_size: int = 32          # faces per optimizer step
    optimizer: str = "adam"       # adam | adamw | sgd
    lr: float = 2e-3              # peak learning rate; cosine decay to 0 after warm-up
    warmup_epochs: int = 2        # linear warm-up of the learning rate from ~0 to --lr
    weight_decay: float = 0.0     # L2 in Adam; 1e-4 did not help (docs/experiments.md)
    loss: str = "smoothl1"        # smoothl1 | l1 | mse | wing
    smooth_l1_beta: float = 0.01  # in the [-1, 1] frame: ~0.4 px at 80 px, i.e. L1-like
    wing_width: float = 0.15      # Wing loss (Feng et al., 2018): log-shaped below this error, L1
                                  # above ([-1, 1] frame: ~7 px at 96 px, the paper's 10 px on a
                                  # 64 px face scaled to our framing); not better than smoothl1
                                  # on the full recipe (docs/experiments.md)
    wing_curvature: float = 0.03  # Wing loss: how sharply small errors are weighted (~1.5 px at
                                  # 96 px, the paper's 2 px)
    heatmap_reg: float = 0.0      # weight of a Jensen-Shannon pull of each heatmap towards a
                                  # Gaussian at its keypoint (DSNT); 0: off. 0.1 trains faster
                                  # but did not lower the test NME of a full run (docs/experiments.md)
    heatmap_sigma: float = 1.0    # that Gaussian's standard deviation, in heatmap cells
    eye_weighted: bool = False    # weigh each face's errors by 1 / its outer-eye distance, as NME
                                  # does; not better (docs/experiments.md)
    val_fraction: float = 0.1     # fraction of people (Udacity) or images (300-W) held out for validation
    framing: str = "detector"     # detector: replay Haar ROI framings measured on the training
                                  # faces (framing.measure_framings); keypoints: face_square only
    rotation: float = 20.0        # augmentation: max rotation, degrees
    translate: float = 0.05       # max shift, fraction of the crop (on top of the framing jitter)
    scale_min: float = 0.9        # smallest zoom of the random affine warp
    scale_max: float = 1.1        # largest zoom of the random affine warp
    brightness: float = 0.4       # colour jitter: brightness scaled by 1 +- this at most
    contrast: float = 0.4         # colour jitter: contrast scaled by 1 +- this at most
    flip: float = 0.5             # probability of a mirrored face (identities swapped)
    degrade: float = 0.3          # probability of one random blur, noise, JPEG or low-resolution
                                  # degradation (degrade.TRAIN_RANGES); 0: off. 0.3: far fewer
                                  # failures on blurred or noisy images for a little clean
                                  # accuracy (docs/experiments.md)
    occlusion: float = 0.0        # probability of a rectangle hiding part of the face
                                  # (data_load.RandomOcclusion); 0: off
    ema: float = 0.0              # decay per step of an exponential moving average of the
                                  # weights and BatchNorm statistics, which validation scores
                                  # and best.pt holds; 0: off. 0.998 averages ~500 steps (~6 epochs)
    subset: int = 0               # >0: use only the first N training rows (smoke runs)
    train_people: float = 1.0     # <1: train on this fraction of the training people (learning
                                  # curves); the validation people stay the same
    pose_balance: float = 0.0     # draw faces by weight 1 / (faces of their turn) ** this (pose-based
                                  # balancing, train_data.pose_weights); 0: a plain shuffle; 0.5 was
                                  # not better (docs/experiments.md)
    pose_bins: int = 8            # --pose-balance: bins of turn, frontal to the most turned
    num_workers: int = 2          # data-loading processes (augmentation runs there)
    seed: int = 0                 # seeds the validation split, the shuffling and the augmentations
    device: str = "auto"          # auto | cpu | cuda
    channels_last: bool = False   # activations in channels-last memory order: epochs about 1.4x as
                                  # fast on a CPU (the shipped models were trained without it)
    dry_run: bool = False         # a few batches of one epoch, to check the plumbing
    resume: bool = False          # continue from out_dir/last.pt
    init: str = ""                # start from this checkpoint's network weights, e.g. a net trained
                                  # at a smaller --input-size fine-tuned at a larger one
                                  # (progressive resizing); the architecture must match; its
                                  # fitted face head and second stage are left out


# The range of every numeric knob, checked while parsing (cli.number's low, high, above)
LIMITS = {"input_size": dict(low=16, high=512), "epochs": dict(low=1), "batch_size": dict(low=1),
          "lr": dict(above=0, high=10), "warmup_epochs": dict(low=0), "weight_decay": dict(low=0),
          "smooth_l1_beta": dict(above=0), "wing_width": dict(above=0), "wing_curvature": dict(above=0),
          "heatmap_reg": dict(low=0), "heatmap_sigma": dict(above=0), "val_fraction": dict(above=0, high=0.9),
          "rotation": dict(low=0, high=180), "translate": dict(low=0, high=1), "scale_min": dict(above=0, high=4),
          "scale_max": dict(above=0, high=4), "brightness": dict(low=0, high=1), "contrast": dict(low=0, high=1),
          "flip": dict(low=0, high=1), "degrade": dict(low=0, high=1), "occlusion": dict(low=0, high=1),
          "ema": dict(low=0, high=0.9999),
          "subset": dict(low=0), "train_people": dict(above=0, high=1), "num_workers": dict(low=0, high=64),
          "pose_balance": dict(low=0, high=1), "pose_bins": dict(low=1, high=100),
          "seed": dict(low=0)}
CHOICES = {"optimizer": ("adam", "adamw", "sgd"), "loss": ("smoothl1", "l1", "mse", "wing"),
           "framing": ("detector", "keypoints"), "device": ("auto", "cpu", "cuda"),
           "arch": tuple(sorted(models.ARCHITECTURES)), "backbone": ("",) + tuple(models.IMAGENET_WEIGHTS)}


def architecture(cfg):
    arch = cfg.backbone or cfg.arch
    if (cfg.pretrained or cfg.freeze_backbone) and arch not in models.IMAGENET_WEIGHTS:
        raise ValueError(f"--pretrained and --freeze-backbone need --backbone {' or '.join(models.IMAGENET_WEIGHTS)}")
    return arch


def model_config(cfg):
    kwargs = cfg.model_kwargs or {}
    markups = parse_datasets(cfg.datasets)
    heads = len(markups)
    if cfg.extra_dirs and "300w" not in markups:
        raise ValueError("--extra-dirs adds faces in 300-W's markup: --datasets must name 300w")
    if heads > 1:
        if architecture(cfg) != "heatmapnet":
            raise ValueError(f"training on {cfg.datasets} needs one head per markup: --arch heatmapnet")
        kwargs = {**kwargs, "heads": heads}
    return models.full_config({"arch": architecture(cfg), "input_size": cfg.input_size, **kwargs})


def make_optimizer(cfg, params):
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose from adam, adamw, sgd")


def make_scheduler(cfg, optimizer, steps_per_epoch):
    warmup = max(1, cfg.warmup_epochs * steps_per_epoch)
    total = max(warmup + 1, cfg.epochs * steps_per_epoch)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return float(0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / (total - warmup)))))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class WeightAverage:
    """An exponential moving average of a model's weights and BatchNorm statistics: it
    smooths out the step-to-step noise of the trained weights (Polyak averaging)."""

    def __init__(self, model, decay):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1 - self.decay)
            else:                                   # BatchNorm's batch counter
                average.copy_(current)


def memory_format(cfg):
    """The activations' memory order that ``cfg.channels_last`` asks for."""
    return torch.channels_last if cfg.channels_last else torch.preserve_format


def train_one_epoch(model, loader, loss_fn, optimizer, scheduler, device, cfg, max_batches=None,
                    average=None):
    """One pass over ``loader`` (updating ``average``, a WeightAverage, after each step);
    returns the mean coordinate loss (comparable to validation's)."""
    model.train()
    total, count = 0.0, 0
    for i, batch in enumerate(tqdm(loader, desc="train", leave=False, disable=None)):  # no bar off a terminal
        if max_batches is not None and i >= max_batches:
            break
        images, targets = batch["image"].to(device), batch["keypoints"].to(device)
        markups = batch["markup"].to(device) if "markup" in batch else None
        loss, coordinate_loss = compute_loss(model, images, targets, loss_fn, cfg, markups)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update(model)
        total, count = total + coordinate_loss.item() * len(images), count + len(images)
    return total / max(count, 1)


@torch.no_grad()
def validate(model, loader, loss_fn, device, max_batches=None):
    """(mean loss, mean NME) on ``loader``; NME uses the outer eye corners."""
    model.eval()
    total, count, nmes = 0.0, 0, []
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        images, targets = batch["image"].to(device), batch["keypoints"].to(device)
        preds = model(images)
        total, count = total + loss_fn(preds, targets.flatten(1)).item() * len(images), count + len(images)
        nmes.append(nme_per_face(preds.view(-1, 68, 2).cpu().numpy(), targets.cpu().numpy()))
    return total / max(count, 1), float(np.concatenate(nmes).mean()) if nmes else float("nan")


def write_history(out_dir, history):
    """history.csv and loss.png (train and validation loss in one plot), atomically."""
    from matplotlib.figure import Figure   # no pyplot: leaves a notebook's backend alone

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
    write_atomic(os.path.join(out_dir, "history.csv"), write_csv)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss per epoch")
    ax.legend()
    fig.tight_layout()
    write_atomic(os.path.join(out_dir, "loss.png"), lambda tmp: fig.savefig(tmp, dpi=100))


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    return torch.device(name)


def train(cfg):
    """Run (or resume) training; returns the history (a list of per-epoch dicts)."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = distributed.setup(cfg.device) or pick_device(cfg.device)
    main_process = distributed.is_main()     # only it prints, writes logs and checkpoints
    log = print if main_process else (lambda *args, **kwargs: None)
    if cfg.heatmap_reg and distributed.world_size() > 1:
        raise ValueError("--heatmap-reg reads the heatmaps past DistributedDataParallel: train it in one process")
    os.makedirs(cfg.out_dir, exist_ok=True)
    train_loader, val_loader = make_loaders(cfg)
    run_config = {"model": model_config(cfg), "framing_scale": geometry.FRAMING_SCALE,
                  "markups": parse_datasets(cfg.datasets), "train": dataclasses.asdict(cfg)}
    model = models.build_model(run_config["model"])
    if cfg.pretrained and not cfg.resume:
        models.load_imagenet_weights(model, architecture(cfg))
    if cfg.init and not cfg.resume:
        added = load_network_weights(model, cfg.init)
        log(f"started from {cfg.init}'s weights" + (f"; new residual blocks {', '.join(added)}" if added else ""))
    if cfg.freeze_backbone:
        model.freeze_backbone()
    model = model.to(device, memory_format=memory_format(cfg))
    loss_fn, optimizer = make_loss(cfg), make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    if cfg.heatmap_reg and not hasattr(model, "heatmaps"):
        log(f"note: {cfg.arch} regresses coordinates directly; --heatmap-reg does not apply")
    scheduler = make_scheduler(cfg, optimizer, len(train_loader))
    average = WeightAverage(model, cfg.ema) if cfg.ema else None
    scored = average.model if average else model     # the weights validation scores and best.pt holds
    history, start, best = [], 1, float("inf")
    last_path, best_path = os.path.join(cfg.out_dir, "last.pt"), os.path.join(cfg.out_dir, "best.pt")
    if cfg.resume:
        state = load_checkpoint(last_path, map_location=device)
        model.load_state_dict(state.get("trained_model", state["model"]))
        if average:
            average.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best = state["history"], state["best_val_loss"]
        start = state["epoch"] + 1
        set_rng_state(state["rng"], train_loader)
        log(f"resumed from {last_path} at epoch {state['epoch']}")
    trained = distributed.wrap(model, device)        # = model in one process
    max_batches = 3 if cfg.dry_run else None
    epochs = start if cfg.dry_run else cfg.epochs
    for epoch in range(start, epochs + 1):
        t0 = time.time()
        if train_loader.sampler is not None and hasattr(train_loader.sampler, "set_epoch"):
            train_loader.sampler.set_epoch(epoch)     # a new shuffle of the shards every epoch
        train_loss = train_one_epoch(trained, train_loader, loss_fn, optimizer, scheduler, device, cfg,
                                     max_batches, average)
        distributed.sync_buffers(model)
        val_loss, val_nme = validate(scored, val_loader, loss_fn, device, max_batches)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "val_nme": val_nme, "lr": optimizer.param_groups[0]["lr"],
                        "seconds": time.time() - t0})
        log(f"epoch {epoch:3d}/{cfg.epochs}  train {train_loss:.5f}  val {val_loss:.5f}  "
            f"val NME {val_nme:.4f}  {history[-1]['seconds']:.0f}s", flush=True)
        if not main_process:
            continue
        state = {"config": run_config, "model": scored.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                 "best_val_loss": min(best, val_loss), "val_nme": val_nme, "rng": rng_state(train_loader)}
        if average:
            state["trained_model"] = model.state_dict()   # what --resume continues from
        if val_loss < best:
            best = val_loss
            save_checkpoint(state, best_path)
        save_checkpoint(state, last_path)
        write_history(cfg.out_dir, history)
    distributed.barrier()      # every process ends with the same weights; rank 0 has written them
    return history


def make_parser():
    parser = cli.Parser(description=__doc__.splitlines()[0])
    helps = cli.comment_help(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag, explanation = "--" + f.name.replace("_", "-"), helps.get(f.name, "").replace("%", "%%")
        if f.type is bool or f.type == "bool":
            parser.add_argument(flag, action="store_true", help=explanation)
        elif f.type is dict or f.type == "dict":
            parser.add_argument(flag, type=cli.json_object, default=f.default, help=f"{explanation} (default: %(default)s)")
        elif f.name in CHOICES:
            parser.add_argument(flag, choices=CHOICES[f.name], default=f.default, help=f"{explanation} (default: %(default)s)")
        else:
            kind = {"int": int, "float": float, "str": str}.get(f.type, f.type)
            kind = cli.number(kind, **LIMITS[f.name]) if f.name in LIMITS else kind
            parser.add_argument(flag, type=kind, default=f.default, help=f"{explanation} (default: %(default)s)")
    return parser


def parse_args(argv=None):
    """The TrainConfig of a command line; every value is checked here (one-line error, exit 2),
    the model's config included, before any data or model loads."""
    parser = make_parser()
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    if cfg.scale_min > cfg.scale_max:
        parser.error(f"--scale-min {cfg.scale_min} is above --scale-max {cfg.scale_max}")
    if os.path.isfile(cfg.out_dir):
        parser.error(f"--out-dir {cfg.out_dir}: an existing file, not a folder")
    if cfg.init and not os.path.isfile(cfg.init):
        parser.error(f"--init {cfg.init}: no such checkpoint")
    if cfg.init and cfg.pretrained:
        parser.error("--init and --pretrained both set the starting weights: give one")
    if cfg.resume and not os.path.isfile(os.path.join(cfg.out_dir, "last.pt")):
        parser.error(f"--resume: no {os.path.join(cfg.out_dir, 'last.pt')} to resume from")
    try:
        model_config(cfg)       # the datasets, the architecture and its keywords
    except ValueError as e:
        parser.error(str(e))
    return cfg


def main(argv=None):
    cfg = parse_args(argv)
    try:
        history = train(cfg)
    except (data_files.DataError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit(f"interrupted: resume with `python train.py --out-dir {cfg.out_dir} --resume ...`")
    finally:
        distributed.cleanup()
    if not distributed.is_main():
        return
    last = history[-1]
    print(f"done: best validation loss {min(h['val_loss'] for h in history):.5f}, "
          f"last val NME {last['val_nme']:.4f}; checkpoints in {cfg.out_dir}")


if __name__ == "__main__":
    main()
