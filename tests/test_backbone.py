"""Transfer learning: a torchvision ResNet on the gray crop, ImageNet weights from the torch cache."""
import os
import urllib.error

import pytest
import torch
import torchvision

import models
import train


@pytest.fixture
def torch_cache(tmp_path, monkeypatch):
    """An empty torch cache, and no network: a download attempt fails as it does here."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network in this test")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch" / "hub" / "checkpoints"


def cached_imagenet_file(cache, arch="resnet18"):
    """A weights file in the cache layout, as torchvision's weights API would have saved it."""
    reference = torchvision.models.resnet18(weights=None)
    torch.manual_seed(7)
    for p in reference.parameters():
        p.data.normal_()
    enum_name, member = models.IMAGENET_WEIGHTS[arch].split(".")
    url = getattr(getattr(torchvision.models, enum_name), member).url
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), cache / os.path.basename(url))
    return reference.state_dict()


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_resnet_maps_gray_crops_to_136_values(arch):
    model = models.build_model({"arch": arch, "input_size": 64}).eval()
    assert model(torch.rand(2, 1, 64, 64)).shape == (2, 136)


def test_pretrained_weights_come_from_the_torch_cache(torch_cache):
    reference = cached_imagenet_file(torch_cache)
    model = models.build_model({"arch": "resnet18"})
    models.load_imagenet_weights(model, "resnet18")
    state = model.backbone.state_dict()
    torch.testing.assert_close(state["conv1.weight"], reference["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(state["layer3.1.conv2.weight"], reference["layer3.1.conv2.weight"])
    assert state["fc.weight"].shape == (136, 512)


def test_a_missing_download_is_a_one_line_error(torch_cache, data_dir, tmp_path):
    with pytest.raises(SystemExit) as done:
        train.main(["--data-dir", data_dir, "--out-dir", str(tmp_path / "run"), "--backbone", "resnet18",
                    "--pretrained", "--dry-run", "--subset", "32", "--framing", "keypoints"])
    message = str(done.value.code)
    assert message.startswith("error: resnet18 ImageNet weights: not in the torch cache")
    assert str(torch_cache) in message and "\n" not in message


def test_a_frozen_backbone_trains_the_head_alone(torch_cache):
    cached_imagenet_file(torch_cache)
    model = models.build_model({"arch": "resnet18", "input_size": 64})
    models.load_imagenet_weights(model, "resnet18")
    model.freeze_backbone().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 1e-2)
    model(torch.rand(4, 1, 64, 64)).square().mean().backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"backbone.fc.weight", "backbone.fc.bias"}     # BatchNorm statistics stay too


def test_pretrained_needs_a_resnet(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--data-dir", data_dir, "--out-dir", str(tmp_path), "--pretrained", "--dry-run"])
    assert exit_info.value.code == 2       # refused while parsing, before any data loads
    assert capsys.readouterr().err.startswith("error: --pretrained and --freeze-backbone need --backbone")
