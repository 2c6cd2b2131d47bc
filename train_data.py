"""The data of a training run: Udacity's CSV, 300-W-layout folders (or dlib XML), or both.

Each dataset keeps its own markup: its items carry ``'markup'``, the index of the output
head that learns it (the order of ``--datasets``; the first is the checkpoint's default
head and the one validation scores). Udacity's validation people and 300-W's validation
images are held out of the training files, never taken from a test set.
"""
import os
import random
import time

import numpy as np
import torch

import data_300w
import data_files
import data_load
import degrade
import distributed
import framing
import pose
from face_detector import FaceDetector

MARKUPS = ("udacity", "300w")
_FRAMINGS = {}


def parse_datasets(spec):
    """'300w+udacity' -> ['300w', 'udacity'] (checked: known names, no repeats)."""
    names = [s.strip() for s in spec.split("+") if s.strip()]
    unknown = [n for n in names if n not in MARKUPS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"--datasets {spec!r}: one or more of {', '.join(MARKUPS)} joined by '+'")
    return names


class WithMarkup(torch.utils.data.Dataset):
    """A dataset whose items also carry ``'markup'``: the index of the head that learns them."""

    def __init__(self, dataset, markup):
        self.dataset, self.markup = dataset, markup

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return {**self.dataset[idx], "markup": self.markup}


def make_transform(cfg, framings=None):
    """The training augmentation pipeline of a config (``framings``: see data_load.FaceCrop)."""
    return data_load.train_transform(cfg.input_size, cfg.rotation, cfg.translate,
                                     (cfg.scale_min, cfg.scale_max), cfg.brightness, cfg.contrast, cfg.flip,
                                     framings, image_augmentations(cfg))


def image_augmentations(cfg):
    """The augmentations that change pixels only, after the colour jitter: degradation, occlusion."""
    return ([degrade.RandomDegrade(cfg.degrade)] if cfg.degrade else []) + \
        ([data_load.RandomOcclusion(cfg.occlusion)] if cfg.occlusion else [])


def _check_framing(cfg):
    if cfg.framing not in ("detector", "keypoints"):
        raise ValueError(f"unknown framing {cfg.framing!r}; choose detector or keypoints")
    return cfg.framing == "detector"


def measure_framings(cfg, dataset):
    """The detector's framings of the training faces, or None for keypoint framing."""
    if not _check_framing(cfg):
        return None
    key = (os.path.abspath(dataset.root_dir), tuple(dataset.names))
    if key not in _FRAMINGS:     # runs in one process (the study, notebook 2) share them
        t0 = time.time()
        _FRAMINGS[key] = framing.measure_framings(dataset, FaceDetector())
        print(f"framings: Haar found {len(_FRAMINGS[key])} of {len(dataset)} training faces "
              f"({time.time() - t0:.0f}s)", flush=True)
    return _FRAMINGS[key]


def udacity_sets(cfg):
    """Person-disjoint (train, validation) datasets over Udacity's training CSV."""
    data_dir = data_files.resolve_data_dir(cfg.data_dir or None)
    csv_file, image_dir = data_files.split_paths(data_dir, "train")
    names, _ = data_files.read_keypoints_csv(csv_file)
    if cfg.subset:
        names = names[:cfg.subset]
    train_idx, val_idx = data_files.split_by_person(names, cfg.val_fraction, cfg.seed)
    if cfg.train_people != 1:
        train_idx = data_files.keep_people(names, train_idx, cfg.train_people, cfg.seed)
    train_set = data_load.FacialKeypointsDataset(csv_file, image_dir, None, train_idx, cache=True)
    train_set.transform = make_transform(cfg, measure_framings(cfg, train_set))
    val_set = data_load.FacialKeypointsDataset(
        csv_file, image_dir, data_load.eval_transform(cfg.input_size), val_idx, cache=True)
    return train_set, val_set


def wild_sets(cfg, cache_size=data_300w.CACHE_SIZE):
    """Image-disjoint (train, validation) datasets over the 300-W-layout sources of
    ``cfg.wild_dirs``, from the face cache (built on first use, with Haar's framings; faces
    ``cache_size`` pixels square: larger for crops larger than the network's)."""
    if not cfg.wild_dirs:
        raise ValueError("--datasets names 300w but --wild-dirs is empty (300-W-layout folders or dlib .xml files)")
    faces = data_300w.read_sources(cfg.wild_dirs)
    extra = data_300w.read_sources(cfg.extra_dirs) if cfg.extra_dirs else []
    if cfg.subset:
        faces, extra = faces[:cfg.subset], extra[:cfg.subset]
    measure = None
    if _check_framing(cfg):
        detector = FaceDetector()

        def measure(gray, keypoints):
            return framing.framing_of(detector(gray), keypoints)
    crops, keypoints, framings = data_300w.build_face_cache(faces + extra, measure, cfg.cache_dir or None, cache_size)
    train_idx, val_idx = data_300w.split_by_image(faces, cfg.val_fraction, cfg.seed)
    train_idx += list(range(len(faces), len(faces) + len(extra)))
    names = [f.name for f in faces + extra]
    found = framings[train_idx]
    found = found[np.isfinite(found).all(1)] if measure else None
    if measure:
        print(f"framings: Haar found {len(found)} of {len(train_idx)} training faces", flush=True)

    def subset(idx, transform):
        return data_300w.CachedFaces(crops[idx], keypoints[idx], [names[i] for i in idx], transform, framings[idx])
    return subset(train_idx, make_transform(cfg, found)), subset(val_idx, data_load.eval_transform(cfg.input_size))


def make_loaders(cfg):
    """(train loader over every dataset, validation loader over the first one)."""
    sets = {"udacity": udacity_sets, "300w": wild_sets}
    pairs = [sets[name](cfg) for name in parse_datasets(cfg.datasets)]
    train_set = torch.utils.data.ConcatDataset([WithMarkup(t, m) for m, (t, _) in enumerate(pairs)])
    val_set = WithMarkup(pairs[0][1], 0)
    gen = torch.Generator().manual_seed(cfg.seed + distributed.rank())   # each process its own draws
    # Workers persist across epochs, each seeded once from ``gen``: the shipped checkpoints were
    # trained so and the default commands reproduce them bit for bit. The checkpoint keeps the
    # main process's random states and ``gen``'s, so --resume repeats an interrupted run exactly
    # with --num-workers 0; with workers, their augmentation streams restart from ``gen``.
    common = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, worker_init_fn=_seed_worker,
                  persistent_workers=cfg.num_workers > 0)
    shard = distributed.sampler(train_set, cfg.seed)      # None in one process: shuffle with ``gen``
    if cfg.pose_balance:
        if shard is not None:
            raise ValueError("--pose-balance draws faces by weight in one process: train without torchrun")
        keypoints = np.concatenate([t.keypoints for t, _ in pairs])
        weights = pose_weights(pose.turn_amount(keypoints), cfg.pose_balance, cfg.pose_bins)
        shard = torch.utils.data.WeightedRandomSampler(torch.from_numpy(weights), len(train_set), generator=gen)
    return (torch.utils.data.DataLoader(train_set, shuffle=shard is None, sampler=shard, generator=gen,
                                        drop_last=len(train_set) // distributed.world_size() > cfg.batch_size,
                                        **common),
            torch.utils.data.DataLoader(val_set, shuffle=False, **common))


def turn_bins(turn, bins):
    """Each face's bin of turn: ``bins`` equal bins from 0 to the most turned face's."""
    return np.minimum((turn / max(turn.max(), 1e-12) * bins).astype(int), bins - 1)


def pose_weights(turn, strength, bins):
    """(N,) drawing weights, mean 1, that even out how often faces of each turn (pose.turn_amount)
    are seen: each face weighs 1 / (faces in its bin of turn) ** ``strength`` (0: all alike; 1:
    every bin drawn equally often)."""
    which = turn_bins(turn, bins)
    weights = np.bincount(which, minlength=bins)[which] ** -float(strength)
    return weights / weights.mean()


def comparable_loaders(cfg, faces=500):
    """(loader over ``faces`` training faces, validation loader), both framed and transformed as
    validation is (no augmentation): losses on comparable terms. The training loss logged per
    epoch is on augmented, degraded, detector-framed crops, so it is no measure of over-fitting."""
    train_set, val_set = parse_sets(cfg)
    every = max(1, len(train_set) // faces)
    train_set.transform = data_load.eval_transform(cfg.input_size)
    fixed = torch.utils.data.Subset(train_set, range(0, len(train_set), every)[:faces])
    return (torch.utils.data.DataLoader(fixed, batch_size=cfg.batch_size),
            torch.utils.data.DataLoader(val_set, batch_size=cfg.batch_size))


def parse_sets(cfg):
    """(train, validation) datasets of the first dataset ``cfg`` names."""
    return {"udacity": udacity_sets, "300w": wild_sets}[parse_datasets(cfg.datasets)[0]](cfg)


def _seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
