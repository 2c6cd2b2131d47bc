"""Checkpoints: a plain dict holding 'config' (plain dicts) and 'model' (a state_dict).

Never a pickled module: the model is rebuilt from the config with models.build_model.
"""
import os
import random

import numpy as np

from atomic import write_atomic

NEW_BLOCK_SCALE = 0.01   # --init into a deeper net: the added residual blocks' last BatchNorm scale
# Plain numpy scalars (e.g. a learning rate computed with numpy) are data, not code. The
# function that rebuilds a pickled scalar is named by numpy's own pickle protocol.
_SAFE_GLOBALS = [np.float64(0).__reduce__()[0], np.dtype, np.dtypes.Float64DType, np.dtypes.Float32DType]


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or not one of ours."""


def save_checkpoint(state, path):
    """Write ``state`` to ``path`` atomically (temp file in the same folder, then rename)."""
    import torch     # here, not at the top: the ONNX runtime path imports CheckpointError only
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint dict (tensors and plain data only: weights_only)."""
    import torch
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"{path}: not a keypoints checkpoint (no config/model entries)")
    return state


def load_model(path, map_location="cpu"):
    """(model in eval mode, config dict) rebuilt from the checkpoint file alone."""
    import models
    state = load_checkpoint(path, map_location)
    config = state["config"]
    try:
        model = models.build_model(config["model"])
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: incompatible checkpoint ({str(e).splitlines()[0]})") from None
    return model.to(map_location).eval(), config


def update_config(path, **entries):
    """Add or replace top-level config entries of a checkpoint file, atomically."""
    state = load_checkpoint(path)
    state["config"] = {**state["config"], **entries}
    save_checkpoint(state, path)


def add_fitted_part(path, out, config_entries, tensors, prefix):
    """Write ``path``'s checkpoint to ``out`` (atomically) with a part fitted after training:
    entries of the model config and state_dict tensors named ``prefix`` + key; any earlier
    tensors under ``prefix`` go first. The written file must rebuild."""
    state = load_checkpoint(path)
    state["config"] = {**state["config"], "model": {**state["config"]["model"], **config_entries}}
    kept = {k: v for k, v in state["model"].items() if not k.startswith(prefix)}
    state["model"] = {**kept, **{prefix + k: v for k, v in tensors.items()}}
    save_checkpoint(state, out)
    load_model(out)


def rng_state(loader):
    """Every random state an epoch draws from: torch's, Python's and NumPy's (augmentations
    run in the main process without workers) and the loader's (shuffling, worker seeds)."""
    import torch
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "loader": loader.generator.get_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}


def set_rng_state(state, loader):
    """Restore what :func:`rng_state` saved."""
    import torch
    if isinstance(state, torch.Tensor):     # checkpoints written before the other states were kept
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    loader.generator.set_state(state["loader"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))


def load_network_weights(model, path):
    """Copy a checkpoint's network weights into ``model`` (--init): every tensor of the model
    must be there with the same shape, except whole residual blocks a deeper net adds, which
    start near the identity; parts fitted after training (the face head, the second stage) are
    not copied. The input size may differ: the nets are fully convolutional."""
    import torch
    import models
    state = load_checkpoint(path)["model"]
    own = model.state_dict()
    fitted = ("face_head.", "refiner.")
    added = [name for name, module in model.named_modules() if isinstance(module, models._Residual)
             and not any(k.startswith(name + ".") for k in state)]
    missing = [k for k in own if k not in state and not k.startswith(fitted)
               and not any(k.startswith(name + ".") for name in added)]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        raise ValueError(f"--init {path}: not the same network (missing {missing[:2]}, "
                         f"other shapes {wrong[:2]}); give the same --arch and --model-kwargs")
    model.load_state_dict({k: state.get(k, v) for k, v in own.items()})
    for name in added:
        # the block's last BatchNorm scaled near zero: x + block(x) starts as about x, and
        # not at zero exactly, where the ReLU after it would pass no gradient
        last = [m for m in model.get_submodule(name).modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
        last.weight.data.fill_(NEW_BLOCK_SCALE)
        last.bias.data.zero_()
    return added


def export_release(src, dst):
    """Copy a training checkpoint without optimizer state: config, weights, history."""
    state = load_checkpoint(src)
    keep = ("config", "model", "epoch", "history", "val_nme", "best_val_loss")
    save_checkpoint({k: state[k] for k in keep if k in state}, dst)


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Write a release copy of a training checkpoint "
                                            "(config, weights and history; no optimizer state).")
    p.add_argument("source", help="a training checkpoint, e.g. runs/wild/best.pt")
    p.add_argument("release", help="where the release goes, e.g. saved_models/keypointnet_wild.pt")
    args = p.parse_args(argv)
    try:
        export_release(args.source, args.release)
    except CheckpointError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {args.release} ({os.path.getsize(args.release) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
