"""A short real training run on a subset: the validation loss falls; resume continues."""
import csv
import math
import os
import re

import cv2
import numpy as np
import pytest
import torch

import checkpoint
import models
import train
from checkpoint import load_checkpoint
from conftest import SHIPPED_MODEL
import data_files
import losses


def config(data_dir, out_dir, **overrides):
    base = dict(data_dir=data_dir, out_dir=str(out_dir), arch="keypointnet", input_size=64,
                subset=240, val_fraction=0.2, epochs=4, batch_size=16, lr=3e-3, warmup_epochs=1,
                num_workers=0, rotation=5.0)
    base.update(overrides)
    return train.TrainConfig(**base)


@pytest.fixture(scope="module")
def short_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train.train(config(data_dir, out))


def test_validation_loss_falls(short_run):
    _, history = short_run
    assert len(history) == 4
    assert history[-1]["val_loss"] < 0.7 * history[0]["val_loss"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_run_writes_checkpoints_history_and_plot(short_run):
    out, history = short_run
    for name in ("best.pt", "last.pt", "history.csv", "loss.png"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    best = load_checkpoint(str(out / "best.pt"))
    model = best["config"]["model"]     # every constructor argument, so a changed default cannot alter it
    assert model["arch"] == "keypointnet" and model["input_size"] == 64 and model["width"] == [32, 64, 128, 256]
    assert best["epoch"] == min(history, key=lambda h: h["val_loss"])["epoch"]
    assert "optimizer" in best and best["config"]["train"]["seed"] == 0


@pytest.mark.parametrize("ema, channels_last", [(0.0, False), (0.9, False), (0.0, True)])
def test_an_interrupted_run_resumed_ends_with_the_uninterrupted_weights(data_dir, tmp_path, monkeypatch, ema,
                                                                        channels_last):
    # detector framing, rotation, flips: random draws
    run = dict(epochs=3, subset=96, ema=ema, channels_last=channels_last)
    train.train(config(data_dir, tmp_path / "whole", **run))
    one_epoch, calls = train.train_one_epoch, []

    def interrupted(*args, **kwargs):               # Ctrl-C during the third epoch
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return one_epoch(*args, **kwargs)
    monkeypatch.setattr(train, "train_one_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train.train(config(data_dir, tmp_path / "cut", **run))
    assert load_checkpoint(str(tmp_path / "cut" / "last.pt"))["epoch"] == 2
    monkeypatch.setattr(train, "train_one_epoch", one_epoch)
    history = train.train(config(data_dir, tmp_path / "cut", resume=True, **run))
    whole, resumed = (load_checkpoint(str(tmp_path / d / "last.pt")) for d in ("whole", "cut"))
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["train_loss"] for h in history] == [h["train_loss"] for h in whole["history"]]
    for key in whole["model"]:
        assert torch.equal(whole["model"][key], resumed["model"][key]), key


def test_same_seed_same_result(data_dir, tmp_path):
    a = train.train(config(data_dir, tmp_path / "a", epochs=1, subset=64))   # detector framing
    b = train.train(config(data_dir, tmp_path / "b", epochs=1, subset=64))
    assert a[0]["val_loss"] == b[0]["val_loss"]


def test_channels_last_trains_the_same_net(data_dir, tmp_path):
    run = dict(epochs=1, subset=64, arch="heatmapnet", model_kwargs={"residual": True})
    plain = train.train(config(data_dir, tmp_path / "plain", **run))
    fast = train.train(config(data_dir, tmp_path / "fast", channels_last=True, **run))
    # the same sums in another order: Adam can turn a rounding-sized gradient into a whole step
    # on a few weights, so the losses are compared, not the weights bit for bit
    assert fast[0]["train_loss"] == pytest.approx(plain[0]["train_loss"], rel=1e-3)
    assert fast[0]["val_loss"] == pytest.approx(plain[0]["val_loss"], rel=1e-3)
    model, _ = checkpoint.load_model(str(tmp_path / "fast" / "last.pt"))   # an ordinary net again
    crops = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(model(crops), model.to(memory_format=torch.channels_last)(crops), rtol=1e-4, atol=1e-5)


def test_cli_dry_run(data_dir, tmp_path):
    train.main(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--subset", "64",
                "--input-size", "64", "--num-workers", "0", "--arch", "smallnet", "--framing", "keypoints"])
    assert os.path.exists(tmp_path / "last.pt")


def refused_while_parsing(argv, pattern, capsys):
    """``train.main(argv)`` stops with exit 2 and one line matching ``pattern`` on standard error."""
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    said = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(said) == 1 and re.search(pattern, said[0]), said


def test_unknown_framing_is_a_one_line_error(data_dir, tmp_path, capsys):
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--subset", "32",
                           "--framing", "oracle"], "--framing: invalid choice: 'oracle'", capsys)


def test_gaussian_target_is_centred_on_its_keypoint():
    """Decoding a Gaussian target with the soft-argmax gives back the keypoint it was made for."""
    model = train.models.HeatmapNet(input_size=64)
    keypoints = torch.rand(2, 68, 2) * 1.2 - 0.6          # inside the crop, off the cell centres
    q = losses.gaussian_targets(model.cell_xy, keypoints, sigma=2.0 / model.grid)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 68))
    torch.testing.assert_close(model.decode(q).reshape(2, 68, 2), keypoints, atol=1e-3, rtol=0)


def test_js_divergence_is_zero_on_equal_and_log2_on_disjoint():
    p = torch.softmax(torch.randn(3, 68, 16), -1)
    one_hot = lambda i: torch.nn.functional.one_hot(torch.tensor(i), 16).float()  # noqa: E731
    torch.testing.assert_close(losses.js_divergence(p, p), torch.zeros(3, 68), atol=1e-6, rtol=0)
    assert abs(losses.js_divergence(one_hot(0), one_hot(5)).item() - math.log(2)) < 1e-5


def test_heatmap_regulariser_trains_and_leaves_coordinate_nets_alone(data_dir, tmp_path):
    common = dict(epochs=2, subset=64, framing="keypoints", heatmap_reg=0.1)
    history = train.train(config(data_dir, tmp_path / "hm", arch="heatmapnet", **common))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    with_reg = train.train(config(data_dir, tmp_path / "net", **common))       # keypointnet
    without = train.train(config(data_dir, tmp_path / "net0", **{**common, "heatmap_reg": 0.0}))
    assert [h["val_loss"] for h in with_reg] == [h["val_loss"] for h in without]


def test_wing_loss_is_log_shaped_below_its_width_and_continuous_at_it():
    wing = losses.WingLoss(width=0.2, curvature=0.05)
    zero = torch.zeros(1)
    assert wing(torch.tensor([0.1]), zero).item() == pytest.approx(0.2 * math.log(1 + 0.1 / 0.05))
    below, above = wing(torch.tensor([0.2 - 1e-6]), zero).item(), wing(torch.tensor([0.2 + 1e-6]), zero).item()
    assert above == pytest.approx(below, abs=1e-5)
    assert wing(torch.tensor([1.2]), zero).item() - wing(torch.tensor([0.7]), zero).item() == pytest.approx(0.5)
    assert wing(torch.tensor([-0.1]), zero).item() == wing(torch.tensor([0.1]), zero).item()


def test_eye_weighted_loss_counts_a_face_with_half_the_eye_distance_twice():
    targets = torch.zeros(2, 68, 2)
    targets[:, 36, 0], targets[:, 45, 0] = -0.2, 0.2
    targets[1] *= 0.5                                  # eyes 0.2 apart instead of 0.4
    weights = losses.eye_weights(targets)
    torch.testing.assert_close(weights[:, 0], torch.tensor([2 / 3, 4 / 3]))
    cfg = train.TrainConfig(loss="l1", eye_weighted=True)

    def loss_with_error_on(face):
        preds = targets.flatten(1).clone()
        preds[face] += 0.1
        return losses.compute_loss(lambda x: preds, None, targets, losses.make_loss(cfg), cfg)

    (wide, plain), (narrow, _) = loss_with_error_on(0), loss_with_error_on(1)
    assert plain.item() == pytest.approx(0.05)         # what validation reports stays unweighted
    assert narrow.item() == pytest.approx(2 * wide.item()) and wide.item() == pytest.approx(0.1 / 3)
    profile = torch.zeros(1, 68, 2)                    # eyes at one point: the floor, not a division by 0
    assert torch.isfinite(losses.eye_weights(profile)).all()


def test_weight_average_moves_each_weight_by_one_minus_decay():
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    average = train.WeightAverage(model, decay=0.75)
    before = {k: v.clone() for k, v in average.model.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(4.0)
    model[1].num_batches_tracked += 3
    average.update(model)
    after = average.model.state_dict()
    assert torch.allclose(after["0.weight"], before["0.weight"] + 1.0)      # 0.25 of the step of 4
    assert torch.equal(after["0.bias"], before["0.bias"])
    assert after["1.num_batches_tracked"].item() == 3
    assert not any(p.requires_grad for p in average.model.parameters())


def test_ema_run_scores_and_ships_the_average_and_resumes_the_trained_weights(data_dir, tmp_path):
    run = dict(subset=96, framing="keypoints", ema=0.9)
    train.train(config(data_dir, tmp_path, epochs=2, **run))
    state = load_checkpoint(str(tmp_path / "last.pt"))
    assert state["model"].keys() == state["trained_model"].keys()
    assert not torch.equal(state["model"]["head.4.weight"], state["trained_model"]["head.4.weight"])
    history = train.train(config(data_dir, tmp_path, epochs=3, resume=True, **run))
    resumed = load_checkpoint(str(tmp_path / "last.pt"))
    assert [h["epoch"] for h in history] == [1, 2, 3] and resumed["epoch"] == 3


def test_default_recipe_and_plain_heatmapnet_are_the_shipped_net():
    shipped = load_checkpoint(SHIPPED_MODEL)["config"]["model"]
    # the face head is fitted after training (train_face_score.py), on the trained net
    assert shipped["face_head"] and not train.model_config(train.TrainConfig())["face_head"]
    assert train.model_config(train.TrainConfig()) == models.full_config({**shipped, "face_head": False})
    head = models.build_model(shipped).face_head
    assert models.count_parameters(models.HeatmapNet())["total"] + head.weight.numel() + head.bias.numel() == \
        models.count_parameters(models.build_model(shipped))["total"]
    net = train.model_config(train.TrainConfig(arch="net"))
    assert net["arch"] == "net" and net["input_size"] == 80 and net["channels"] == [32, 64, 128, 256]
    assert models.build_model(net)(torch.zeros(2, 1, 80, 80)).shape == (2, 136)


def test_a_keyword_the_net_does_not_take_is_a_one_line_error(data_dir, tmp_path, capsys):
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--subset", "32",
                           "--arch", "smallnet", "--model-kwargs", '{"neck": 48}', "--framing", "keypoints"],
                          "smallnet: .*neck", capsys)


@pytest.fixture(scope="module")
def wild_dir(data_dir, tmp_path_factory):
    """A 300-W-layout folder (PNG + 1-based .pts) made of 48 Udacity training faces."""
    import data_load
    from data_300w import write_pts
    root = tmp_path_factory.mktemp("wild")
    faces = data_load.FacialKeypointsDataset(*data_files.split_paths(data_dir, "train"), indices=range(48))
    for i in range(len(faces)):
        item = faces[i]
        stem = os.path.splitext(item["name"])[0]
        cv2.imwrite(str(root / f"{stem}.png"), cv2.cvtColor(item["image"], cv2.COLOR_RGB2BGR))
        write_pts(str(root / f"{stem}.pts"), item["keypoints"])
    return str(root)


def test_joint_run_learns_one_head_per_markup(data_dir, wild_dir, tmp_path):
    cfg = config(data_dir, tmp_path, arch="heatmapnet", datasets="300w+udacity", wild_dirs=wild_dir,
                 cache_dir=str(tmp_path / "cache"), subset=48, epochs=2, model_kwargs={"neck": 16})
    history = train.train(cfg)
    assert len(history) == 2 and np.isfinite(history[-1]["val_nme"])
    assert len(os.listdir(tmp_path / "cache")) == 1           # the 300-W faces were cut once
    state = load_checkpoint(str(tmp_path / "best.pt"))
    assert state["config"]["markups"] == ["300w", "udacity"] and state["config"]["model"]["heads"] == 2
    from keypointer import Keypointer
    crop = np.random.default_rng(0).random((1, 1, 64, 64)).astype(np.float32)
    wild, udacity = Keypointer(str(tmp_path / "best.pt"), "torch"), Keypointer(str(tmp_path / "best.pt"), "torch",
                                                                             markup="udacity")
    assert wild.markup == "300w" and not np.allclose(wild(crop), udacity(crop))


def test_wild_data_options_are_one_line_errors(data_dir, wild_dir, tmp_path, capsys):
    with pytest.raises(SystemExit, match="--wild-dirs is empty"):
        train.main(["--out-dir", str(tmp_path), "--dry-run", "--datasets", "300w"])
    refused_while_parsing(["--out-dir", str(tmp_path), "--dry-run", "--datasets", "ibug"], "--datasets 'ibug'", capsys)
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--datasets", "300w+udacity",
                           "--wild-dirs", wild_dir, "--arch", "smallnet"], "one head per markup: --arch heatmapnet", capsys)
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--extra-dirs", wild_dir],
                          "--datasets must name 300w", capsys)


def test_the_model_config_draws_nothing_from_the_random_generator():
    """Building the config must not initialise a model: the run's weights would change."""
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    train.model_config(train.TrainConfig())
    assert torch.equal(torch.rand(3), expected)


def test_init_starts_a_deeper_residual_net_from_a_shallower_ones_function(tmp_path):
    torch.manual_seed(0)
    kwargs = dict(input_size=32, width=[8, 16, 24, 32], neck=8, residual=True)
    shallow = models.HeatmapNet(depth=[1, 2, 2, 1], **kwargs)
    path = str(tmp_path / "shallow.pt")
    checkpoint.save_checkpoint({"config": {"model": {"arch": "heatmapnet", **kwargs}}, "model": shallow.state_dict()}, path)
    deeper = models.HeatmapNet(depth=[1, 2, 3, 2], **kwargs)
    assert checkpoint.load_network_weights(deeper, path) == ["stages.2.2", "stages.3.1"]
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        gap = (deeper.eval()(x) - shallow.eval()(x)).abs().max()
    assert 0 < gap < 0.05              # near the shallow net, and the new blocks not dead
    with pytest.raises(ValueError, match="not the same network"):   # without skips a block is no identity
        checkpoint.load_network_weights(models.HeatmapNet(depth=[1, 2, 3, 2], **{**kwargs, "residual": False}), path)


def test_init_starts_a_larger_input_from_a_trained_nets_weights(short_run, data_dir, tmp_path, capsys):
    small = dict(arch="heatmapnet", model_kwargs={"neck": 16}, epochs=1, subset=64)
    train.train(config(data_dir, tmp_path / "64", **small))                    # at 64 px
    trained = load_checkpoint(str(tmp_path / "64" / "best.pt"))["model"]
    model = models.build_model(train.model_config(config(data_dir, tmp_path, input_size=80, **small)))
    checkpoint.load_network_weights(model, str(tmp_path / "64" / "best.pt"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    history = train.train(config(data_dir, tmp_path / "80", input_size=80, init=str(tmp_path / "64" / "best.pt"), **small))
    assert load_checkpoint(str(tmp_path / "80" / "best.pt"))["config"]["model"]["input_size"] == 80
    assert np.isfinite(history[0]["val_nme"])
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--init", str(tmp_path / "no.pt")],
                          "--init .*no such checkpoint", capsys)
    refused_while_parsing(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--dry-run", "--backbone", "resnet18",
                           "--pretrained", "--init", str(tmp_path / "64" / "best.pt")], "--init and --pretrained", capsys)
    out, _ = short_run        # keypointnet: its fully connected layer's size depends on the input
    with pytest.raises(SystemExit, match="not the same network"):
        train.main(["--data-dir", data_dir, "--out-dir", str(tmp_path / "other"), "--dry-run", "--subset", "32",
                    "--num-workers", "0", "--arch", "keypointnet", "--input-size", "80", "--init", str(out / "best.pt")])


def test_pose_weights_even_out_the_turns():
    from train_data import pose_weights
    turns = np.array([0.0, 0.1, 0.2, 0.3, 0.35, 0.95, 1.0])      # bins of 0.5: five frontal, two turned
    np.testing.assert_allclose(pose_weights(turns, 0.0, 2), 1.0)
    even = pose_weights(turns, 1.0, 2)
    assert even.mean() == pytest.approx(1) and even[:5].sum() == pytest.approx(even[5:].sum())
    half = pose_weights(turns, 0.5, 2)
    assert half[6] / half[0] == pytest.approx(np.sqrt(5 / 2))


def test_pose_balanced_run_draws_by_weight_and_resumes(data_dir, wild_dir, tmp_path):
    cfg = config(data_dir, tmp_path, arch="heatmapnet", datasets="300w", wild_dirs=wild_dir,
                 cache_dir=str(tmp_path / "cache"), subset=48, epochs=2, model_kwargs={"neck": 16},
                 pose_balance=0.5, pose_bins=4)
    loader, _ = train.make_loaders(cfg)
    assert isinstance(loader.sampler, torch.utils.data.WeightedRandomSampler)
    assert len(list(loader.sampler)) == len(loader.dataset)
    history = train.train(cfg)
    resumed = train.train(train.TrainConfig(**{**vars(cfg), "epochs": 3, "resume": True}))
    assert [h["epoch"] for h in resumed] == [1, 2, 3] and resumed[:2] == history


def test_turns_report_counts_each_source_and_bins_every_face(wild_dir, tmp_path, capsys):
    from benchmarks import turns
    turns.main(["--datasets", "300w", "--wild-dirs", wild_dir, "--extra-dirs", wild_dir, "--cache-dir",
                str(tmp_path), "--pose-balance", "1", "--pose-bins", "3", "--val-fraction", "0.25"])
    out = capsys.readouterr().out
    wild, extra = (int(re.search(rf"{flag} +(\d+) faces", out).group(1)) for flag in ("--wild-dirs", "--extra-dirs"))
    assert (wild, extra) == (36, 48)                       # a quarter of 48 images held out; extras all train
    per_bin = [int(n) for n in re.search(r"frontal first\): \[([\d, ]+)\]", out).group(1).split(",")]
    assert len(per_bin) == 3 and sum(per_bin) == wild + extra
    assert float(re.search(r"largest weight ([\d.]+)x", out).group(1)) > 1
