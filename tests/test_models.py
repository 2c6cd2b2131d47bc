"""Model shapes, parameter counts, and checkpoints that rebuild the model from the file."""
import numpy as np
import pytest
import torch

import models
from checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from keypointer import DEFAULT_CHECKPOINT, ONNX_TOLERANCE, UDACITY_CHECKPOINT, Keypointer


@pytest.mark.parametrize("config", [
    {"arch": "net", "input_size": 96}, {"arch": "net", "input_size": 112},
    {"arch": "naimishnet", "input_size": 96}, {"arch": "oneconv", "input_size": 64},
    {"arch": "smallnet", "input_size": 96}, {"arch": "keypointnet", "input_size": 112},
    {"arch": "heatmapnet"}, {"arch": "heatmapnet", "heads": 2, "markup": 1}])     # the shipped net
def test_every_model_maps_gray_crops_to_136_values(config):
    model = models.build_model(config).eval()
    size = models.full_config(config)["input_size"]
    assert model(torch.rand(2, 1, size, size)).shape == (2, 136)


def test_net_has_batchnorm_and_rising_dropout():
    net = models.Net()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    drops = [m.p for m in net.features.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == sorted(drops) and len(drops) == 4


def test_parameter_count_splits_conv_and_fc():
    counts = models.count_parameters(models.OneConvNet(input_size=64, channels=8, pool=4))
    assert counts["conv"] == 8 * 25 + 8
    assert counts["fc"] == 8 * 16 * 16 * 136 + 136
    assert counts["total"] == counts["conv"] + counts["fc"] + counts["other"]
    # NaimishNet as published: ~7.4M parameters, almost all in the dense layers
    naimish = models.count_parameters(models.NaimishNet())
    assert 7.0e6 < naimish["total"] < 8.0e6 and naimish["fc"] > 0.95 * naimish["total"]


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        models.build_model({"arch": "resnet9000", "input_size": 96})


def _checkpoint(tmp_path, config=None):
    config = config or {"arch": "keypointnet", "input_size": 64}
    model = models.build_model(config).eval()
    path = str(tmp_path / "m.pt")
    save_checkpoint({"config": {"model": config, "framing_scale": 1.8}, "model": model.state_dict()}, path)
    return model, path


def test_checkpoint_rebuilds_the_same_model(tmp_path):
    model, path = _checkpoint(tmp_path)
    rebuilt, config = load_model(path)
    x = torch.rand(3, 1, 64, 64)
    torch.testing.assert_close(rebuilt(x), model(x))
    assert config["model"]["arch"] == "keypointnet"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("which", ["small", UDACITY_CHECKPOINT, DEFAULT_CHECKPOINT])
def test_onnx_backend_matches_torch(tmp_path, which):
    path = _checkpoint(tmp_path)[1] if which == "small" else which
    size = Keypointer(path, "torch").input_size
    crops = np.random.default_rng(1).random((4, 1, size, size))
    diff = np.abs(Keypointer(path, "onnx").raw(crops) - Keypointer(path, "torch").raw(crops)).max()
    assert diff < ONNX_TOLERANCE


def test_onnx_export_command_writes_a_model_onnx_runtime_runs(tmp_path, capsys):
    import onnxruntime
    import keypointer
    _, path = _checkpoint(tmp_path)
    keypointer.main([path, "--onnx", str(tmp_path / "m.onnx")])
    assert "max |onnx - torch|" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    crops = np.random.default_rng(4).random((2, 1, 64, 64)).astype(np.float32)
    out = session.run(None, {session.get_inputs()[0].name: crops})[0]
    np.testing.assert_allclose(out, Keypointer(path, "torch").raw(crops).reshape(out.shape), atol=ONNX_TOLERANCE)
    with pytest.raises(SystemExit, match="error: .*checkpoint not found"):
        keypointer.main([str(tmp_path / "none.pt"), "--onnx", str(tmp_path / "x.onnx")])
    assert not (tmp_path / "x.onnx").exists()


def test_release_export_drops_the_optimizer_and_keeps_the_weights(tmp_path, capsys):
    import checkpoint
    model, path = _checkpoint(tmp_path)
    state = load_checkpoint(path)
    state.update(optimizer={"state": {}}, epoch=3, history=[{"epoch": 3}])
    save_checkpoint(state, path)
    checkpoint.main([path, str(tmp_path / "release.pt")])
    release = load_checkpoint(str(tmp_path / "release.pt"))
    assert "optimizer" not in release and release["epoch"] == 3
    assert all(torch.equal(release["model"][k], v) for k, v in model.state_dict().items())
    with pytest.raises(SystemExit, match="error: .*not found"):
        checkpoint.main([str(tmp_path / "none.pt"), str(tmp_path / "r2.pt")])


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path / "none.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(str(tmp_path / "junk.pt"))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a keypoints checkpoint"):
        load_checkpoint(str(tmp_path / "other.pt"))
    _, path = _checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    state["config"]["model"]["width"] = [8, 8, 8, 8]
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="incompatible checkpoint"):
        load_model(str(tmp_path / "mismatch.pt"))


def test_flip_averaging_is_mirror_consistent(tmp_path):
    """With flip averaging, the prediction on a mirrored crop is the mirrored prediction."""
    from markup import FLIP_PERMUTATION
    _, path = _checkpoint(tmp_path)
    keypointer = Keypointer(path, "torch", flip=True)
    crop = np.random.default_rng(2).random((1, 1, 64, 64)).astype(np.float32)
    direct, on_mirror = keypointer(crop)[0], keypointer(crop[..., ::-1].copy())[0]
    expected = direct[FLIP_PERMUTATION].copy()
    expected[:, 0] = 64 - expected[:, 0]
    np.testing.assert_allclose(on_mirror, expected, atol=1e-4)


def test_heatmap_soft_argmax_reads_the_peak_cell_centre():
    """A heatmap peaked on one cell decodes to that cell's centre in the [-1, 1] frame."""
    model = models.HeatmapNet(input_size=64).eval()
    grid = 64 // 4
    rows, cols = np.arange(68) % grid, (np.arange(68) * 7) % grid
    heatmaps = torch.zeros(1, 68, grid, grid)
    heatmaps[0, np.arange(68), rows, cols] = 50.0   # softmax puts ~all mass on this cell
    model.head[1].register_forward_hook(lambda module, inputs, output: heatmaps)   # replaces the output
    out = model(torch.rand(1, 1, 64, 64)).reshape(68, 2).detach().numpy()
    centre = lambda i: (i + 0.5) / grid * 2 - 1   # noqa: E731
    np.testing.assert_allclose(out, np.stack([centre(cols), centre(rows)], 1), atol=1e-4)



def test_a_heatmap_net_reads_a_crop_k_times_finer_as_its_pixel_means():
    import cv2
    model = models.HeatmapNet(input_size=32).eval()
    fine = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    area = cv2.resize(fine, (32, 32), interpolation=cv2.INTER_AREA)     # how the pipeline cuts a crop
    with torch.no_grad():
        torch.testing.assert_close(model(torch.from_numpy(fine)[None, None]), model(torch.from_numpy(area)[None, None]),
                                   atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="48 px crop for a 32 px network"):
            model(torch.zeros(1, 1, 48, 48))


def test_two_head_model_gives_each_sample_its_markup_head():
    model = models.HeatmapNet(input_size=64, width=(8, 16, 24, 32), neck=16, heads=2).eval()
    x, markups = torch.rand(4, 1, 64, 64), torch.tensor([0, 1, 1, 0])
    mixed = model(x, markups)
    first = model(x)                     # the default head: markup 0
    model.markup = 1
    second = model(x)
    assert mixed.shape == first.shape == (4, 136) and not torch.allclose(first, second)
    torch.testing.assert_close(mixed[[0, 3]], first[[0, 3]])
    torch.testing.assert_close(mixed[[1, 2]], second[[1, 2]])
    with pytest.raises(ValueError, match="markup 2 is not one of the 2 heads"):
        models.HeatmapNet(input_size=64, heads=2, markup=2)


def test_keypointer_picks_a_head_by_markup_name_in_both_backends(tmp_path):
    config = {"arch": "heatmapnet", "input_size": 64, "width": [8, 16, 24, 32], "neck": 16, "heads": 2}
    model = models.build_model(config).eval()
    path = str(tmp_path / "two.pt")
    save_checkpoint({"config": {"model": config, "markups": ["300w", "udacity"]}, "model": model.state_dict()}, path)
    crops = np.random.default_rng(3).random((3, 1, 64, 64)).astype(np.float32)
    model.markup = 1
    expected = model(torch.from_numpy(crops)).detach().numpy().reshape(3, 68, 2)
    for backend in ("torch", "onnx"):
        keypointer = Keypointer(path, backend, markup="udacity")
        assert keypointer.markup == "udacity"
        np.testing.assert_allclose(keypointer.raw(crops), expected, atol=ONNX_TOLERANCE)
    assert Keypointer(path, "torch").markup == "300w"
    with pytest.raises(CheckpointError, match="no 'ibug' head"):
        Keypointer(path, "torch", markup="ibug")
