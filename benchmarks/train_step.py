"""Time per training step of a keypoint net on this machine, in each memory order train.py
offers: the default (contiguous), ``--channels-last``, and torch.compile for comparison.

One step is train.train_one_epoch over a single batch of random crops (forward, the recipe's
SmoothL1 loss, backward, an Adam update), without data loading; the median of ``runs`` steps after a
warm-up, printed as a Markdown table. Run it with nothing else on the machine.

    python benchmarks/train_step.py [--checkpoint saved_models/keypointnet_wild.pt] [--batch 32]
        [--runs 20] [--json outputs/train_step.json]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cli  # noqa: E402
import models  # noqa: E402
import train  # noqa: E402
from atomic import write_json  # noqa: E402
from checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from keypointer import DEFAULT_CHECKPOINT  # noqa: E402
from losses import make_loss  # noqa: E402

WARM_UP = 5
MODES = ("contiguous", "channels_last", "compile")


def step_ms(config, mode, batch, runs):
    """Median milliseconds of one training step (train.train_one_epoch over one batch, the
    default recipe's loss and optimizer) of a fresh net built from ``config``."""
    torch.manual_seed(0)
    cfg = train.TrainConfig(batch_size=batch, channels_last=mode == "channels_last")
    model = models.build_model(config).to(memory_format=train.memory_format(cfg))
    run = torch.compile(model) if mode == "compile" else model
    optimizer = train.make_optimizer(cfg, model.parameters())
    scheduler = train.make_scheduler(cfg, optimizer, WARM_UP + runs)
    size = config["input_size"]
    one_batch = [{"image": torch.rand(batch, 1, size, size), "keypoints": torch.rand(batch, 68, 2) * 2 - 1}]
    times = []
    for i in range(WARM_UP + runs):
        t0 = time.perf_counter()
        train.train_one_epoch(run, one_batch, make_loss(cfg), optimizer, scheduler, "cpu", cfg)
        if i >= WARM_UP:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="the net to time (its config, not its weights)")
    p.add_argument("--batch", type=cli.number(int, 1), default=32, help="faces per step (default: %(default)s, train.py's)")
    p.add_argument("--runs", type=cli.number(int, 1), default=20, help="timed steps per mode (default: %(default)s)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES))
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    modes = args.modes.split(",")
    if unknown := [m for m in modes if m not in MODES]:
        p.error(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    try:
        config = {**load_checkpoint(args.checkpoint)["config"]["model"], "face_head": False, "refiner": None}
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    figures = {"threads": torch.get_num_threads(), "batch": args.batch, "input_size": config["input_size"]}
    print(f"| memory order ({config['input_size']} px, batch of {args.batch}, {figures['threads']} threads) "
          "| ms per step | faces per second |\n|---|---:|---:|", flush=True)   # a Markdown table
    for mode in modes:
        ms = step_ms(config, mode, args.batch, args.runs)
        figures[mode] = {"ms per step": ms, "faces per second": 1000 * args.batch / ms}
        print(f"| {mode} | {ms:.0f} | {1000 * args.batch / ms:.0f} |", flush=True)
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
