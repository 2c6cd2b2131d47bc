"""CNNs that regress the 68 facial keypoints from a grayscale square face crop.

Every model takes ``(N, 1, S, S)`` floats in [0, 1] and returns ``(N, 136)``:
x0, y0, ..., x67, y67 in the [-1, 1] frame of the crop (see data_load.py).
Build one from a checkpoint's plain-dict config with :func:`build_model`.
"""
import inspect
import os

import torch
import torch.nn as nn

from refiner import ShapeRefiner, gated

NUM_OUTPUTS = 136


def _conv_block(c_in, c_out, kernel, dropout):
    """Conv -> BatchNorm -> ELU -> 2x2 max-pool -> dropout (NaimishNet's unit + BN)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ELU(inplace=True), nn.MaxPool2d(2),
                         nn.Dropout(dropout))


def _flat_size(features, input_size):
    with torch.no_grad():
        return features(torch.zeros(1, 1, input_size, input_size)).numel()


class Net(nn.Module):
    """NaimishNet-style: four conv blocks with BatchNorm, ELU, pooling, rising dropout."""

    def __init__(self, input_size=112, channels=(32, 64, 128, 256), kernels=(5, 3, 3, 3),
                 dropouts=(0.1, 0.2, 0.3, 0.4), hidden=256, head_dropout=0.5):
        super().__init__()
        blocks, c_in = [], 1
        for c_out, k, p in zip(channels, kernels, dropouts):
            blocks.append(_conv_block(c_in, c_out, k, p))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_size(self.features, input_size), hidden),
            nn.ELU(inplace=True), nn.Dropout(head_dropout), nn.Linear(hidden, NUM_OUTPUTS))

    def forward(self, x):
        return self.head(self.features(x))


class NaimishNet(nn.Module):
    """NaimishNet as published (Agarwal et al., 2017): 96x96 input, ~7.4M parameters."""

    def __init__(self, input_size=96):
        super().__init__()
        layers, c_in = [], 1
        for c_out, k, p in zip((32, 64, 128, 256), (4, 3, 2, 1), (0.1, 0.2, 0.3, 0.4)):
            layers += [nn.Conv2d(c_in, c_out, k), nn.ELU(inplace=True), nn.MaxPool2d(2),
                       nn.Dropout(p)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_size(self.features, input_size), 1000),
            nn.ELU(inplace=True), nn.Dropout(0.5), nn.Linear(1000, 1000), nn.Dropout(0.6),
            nn.Linear(1000, NUM_OUTPUTS))

    def forward(self, x):
        return self.head(self.features(x))


class OneConvNet(nn.Module):
    """The smallest baseline: one conv layer, one pooling, one fully connected layer."""

    def __init__(self, input_size=112, channels=32, pool=4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, channels, 5, padding=2), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(pool))
        self.head = nn.Sequential(nn.Flatten(),
                                  nn.Linear(_flat_size(self.features, input_size), NUM_OUTPUTS))

    def forward(self, x):
        return self.head(self.features(x))


class SmallNet(nn.Module):
    """Three conv blocks (BatchNorm, ReLU, pooling) and two fully connected layers."""

    def __init__(self, input_size=112, channels=(32, 64, 128), hidden=256):
        super().__init__()
        layers, c_in = [], 1
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_size(self.features, input_size), hidden),
            nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(hidden, NUM_OUTPUTS))

    def forward(self, x):
        return self.head(self.features(x))


def _separable(c_in, c_out, stride):
    """Depthwise 3x3 then pointwise 1x1, each with BatchNorm and ReLU (MobileNet unit)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    """x + block(x): a skip connection around a block that keeps the shape."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


class KeypointNet(nn.Module):
    """HeatmapNet's predecessor: a strided conv stem, depthwise-separable stages, and a
    spatially aware head (1x1 squeeze, flatten, two FC layers) — few multiply-adds
    per face, so it runs in about a millisecond on a laptop CPU."""

    def __init__(self, input_size=112, width=(32, 64, 128, 256), depth=(1, 2, 4, 2),
                 squeeze=32, hidden=256, dropout=0.1):
        super().__init__()
        layers = [nn.Conv2d(1, width[0], 3, 2, 1, bias=False), nn.BatchNorm2d(width[0]),
                  nn.ReLU(inplace=True)]
        c_in = width[0]
        for c_out, n in zip(width, depth):
            for i in range(n):
                stride = 2 if i == 0 and c_out != c_in else 1
                layers.append(_separable(c_in, c_out, stride))
                c_in = c_out
        layers += [nn.Conv2d(c_in, squeeze, 1, bias=False), nn.BatchNorm2d(squeeze),
                   nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_size(self.features, input_size), hidden),
            nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, NUM_OUTPUTS))

    def forward(self, x):
        return self.head(self.features(x))


class HeatmapNet(nn.Module):
    """The shipped net (both checkpoints in saved_models/, with these defaults):
    KeypointNet's backbone, a feature pyramid back to 1/4 resolution, one heatmap
    per keypoint, and a soft-argmax that turns each heatmap into (x, y) — integral
    regression: the coordinates are read where the features are, not from an FC layer.

    The defaults (80 px, 0.75x KeypointNet's widths) are the Udacity model's; the in-the-wild
    model's widths, input size and residual blocks are in its checkpoint's config. What each
    choice measured is in docs/experiments.md."""

    def __init__(self, input_size=80, width=(24, 48, 96, 192), depth=(1, 2, 4, 2), neck=48,
                 heads=1, markup=0, face_head=False, refiner=None, residual=False):
        super().__init__()
        # residual: a skip connection around every block that keeps its input's shape, so the
        # deeper stages learn corrections (ResNet); no multiply-adds added
        # face_head: a logistic face/no-face output on the pooled deepest features and the
        # heatmap spread, fitted after training by train_face_score.py (the face score).
        # heads > 1: one heatmap layer per markup (Udacity's and 300-W's place the same 68
        # points differently) on shared features; forward() gives head ``markup``.
        if not 0 <= markup < heads:
            raise ValueError(f"markup {markup} is not one of the {heads} heads")
        self.heads, self.markup = heads, markup
        self.stem = nn.Sequential(nn.Conv2d(1, width[0], 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(width[0]), nn.ReLU(inplace=True))
        stages, c_in = [], width[0]
        for c_out, n in zip(width, depth):
            blocks = [_separable(c_in if i == 0 else c_out, c_out, 2 if i == 0 and c_out != c_in else 1)
                      for i in range(n)]
            if residual:
                blocks = [_Residual(b) if i > 0 or c_out == c_in else b for i, b in enumerate(blocks)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(c, neck, 1) for c in width[1:])
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Sequential(_separable(neck, neck, 1), nn.Conv2d(neck, heads * NUM_OUTPUTS // 2, 1))
        self.input_size, self.grid = input_size, input_size // 4
        centers = (torch.arange(self.grid, dtype=torch.float32) + 0.5) / self.grid * 2 - 1
        ys, xs = torch.meshgrid(centers, centers, indexing="ij")
        # (grid * grid, 2): the (x, y) of every heatmap cell, in the [-1, 1] crop frame
        self.register_buffer("cell_xy", torch.stack([xs.flatten(), ys.flatten()], 1), persistent=False)
        self.register_buffer("cell_index", torch.arange(self.grid, dtype=torch.float32), persistent=False)
        self.face_head = nn.Linear(width[-1] + 1, 1) if face_head else None
        # refiner: ShapeRefiner arguments (a dict) when train_refiner.py has fitted a second
        # stage; it runs only when ``second_stage`` is set (keypointer.Keypointer sets it on request)
        self.refiner = ShapeRefiner(**refiner) if refiner else None
        self.second_stage = False

    def heatmaps(self, x, markups=None):
        """(N, 68, H/4, W/4) logits: one heatmap per keypoint, from head ``self.markup``,
        or from head ``markups[i]`` for sample i when a (N,) index tensor is given."""
        return self.heatmaps_and_features(x, markups)[0]

    def heatmaps_and_features(self, x, markups=None):
        """(heatmaps as :meth:`heatmaps`, the deepest features averaged over space (N, C))."""
        x = self.stem(self.network_input(x))
        pyramid = []
        for stage in self.stages:
            x = stage(x)
            pyramid.append(x)
        top = self.lateral[-1](pyramid[-1])
        for lateral, features in zip(reversed(self.lateral[:-1]), reversed(pyramid[1:-1])):
            top = lateral(features) + self.up(top)
        top, out, k = self.head[0](top), self.head[1], NUM_OUTPUTS // 2
        pooled = pyramid[-1].mean((2, 3))
        if self.heads == 1:
            return out(top), pooled
        if markups is None:     # a constant slice of the weights: one head's cost at inference
            m = self.markup
            return nn.functional.conv2d(top, out.weight[m * k:(m + 1) * k], out.bias[m * k:(m + 1) * k]), pooled
        maps = out(top).unflatten(1, (self.heads, k))
        return maps[torch.arange(len(maps), device=maps.device), markups], pooled

    def network_input(self, crops):
        """The crop the network reads: ``crops`` itself, or, for a crop k times finer (the one a
        second stage that reads finer pixels takes, refiner.py), its k x k pixel means."""
        side = crops.shape[-1]
        if side == self.input_size:
            return crops
        if side % self.input_size:
            raise ValueError(f"a {side} px crop for a {self.input_size} px network")
        return nn.functional.avg_pool2d(crops, side // self.input_size)

    def face_logit(self, pooled, spread):
        """(N,) face/no-face logits from :meth:`heatmaps_and_features`' features and the spread."""
        return self.face_head(torch.cat([pooled, spread[:, None]], 1))[:, 0]

    def probabilities(self, heatmaps):
        """(N, 68, grid * grid): each heatmap softmaxed over its cells."""
        # Constant shapes (only the batch is -1) keep the exported graph free of
        # Shape/Gather/Concat nodes, which cost as much as a conv at batch one.
        return torch.softmax(heatmaps.reshape(-1, NUM_OUTPUTS // 2, self.grid * self.grid), dim=-1)

    def point_spreads(self, prob):
        """(N, 68): each map's RMS distance from its mean, in cells. Compact where the net sees
        its point, spread out where it guesses (a covered eye) or on anything but a face."""
        maps = prob.reshape(-1, NUM_OUTPUTS // 2, self.grid, self.grid)
        px, py = maps.sum(2), maps.sum(3)       # marginals over x and over y
        mean_x, mean_y = px @ self.cell_index, py @ self.cell_index
        var = px @ self.cell_index ** 2 - mean_x ** 2 + py @ self.cell_index ** 2 - mean_y ** 2
        return var.clamp(min=0).sqrt()

    def spread(self, prob):
        """(N,): the mean of :meth:`point_spreads`, the input of the face score."""
        return self.point_spreads(prob).mean(1)

    def decode(self, prob):
        """(N, 136): the expected (x, y) of every keypoint under its probabilities."""
        return (prob @ self.cell_xy).reshape(-1, NUM_OUTPUTS)

    def has_second_stage(self):
        """Whether a refiner was fitted on the points of the current head."""
        return self.refiner is not None and self.refiner.markup == self.markup

    def refine(self, crops, keypoints, point_spreads):
        """(N, 136) keypoints, moved by the refiner when ``second_stage`` is on: on every face,
        or, with the refiner's gate, only where its point spreads (N, 68) say the net saw the
        face (refiner.gated)."""
        if not (self.second_stage and self.has_second_stage()):
            return keypoints
        if crops.shape[-1] != self.refiner.size:
            raise ValueError(f"the second stage reads {self.refiner.size} px crops, not {crops.shape[-1]} px")
        refined = self.refiner(crops, keypoints.reshape(-1, NUM_OUTPUTS // 2, 2)).reshape(-1, NUM_OUTPUTS)
        return gated(self.refiner.gate, point_spreads, refined, keypoints)

    def forward(self, x, markups=None):
        prob = self.probabilities(self.heatmaps(x, markups))
        keypoints = self.decode(prob)
        return keypoints if markups is not None else self.refine(x, keypoints, self.point_spreads(prob))


class ResNetKeypoints(nn.Module):
    """A torchvision ResNet on the grayscale crop (transfer learning): its first convolution
    takes one channel and its classifier becomes a 136-output keypoint head. The crop is
    normalised by ImageNet's gray mean and spread, as the pretrained filters expect."""
    DEPTH = 18
    GRAY_MEAN, GRAY_STD = 0.449, 0.226      # ImageNet's RGB means and spreads, averaged

    def __init__(self, input_size=96):
        super().__init__()
        import torchvision
        self.input_size, self.frozen = input_size, False
        self.backbone = getattr(torchvision.models, f"resnet{self.DEPTH}")(weights=None)
        self.backbone.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        self.backbone.fc = nn.Linear(self.backbone.fc.in_features, NUM_OUTPUTS)

    def forward(self, x):
        return self.backbone((x - self.GRAY_MEAN) / self.GRAY_STD)

    def load_imagenet(self, state):
        """Load torchvision's ImageNet state dict: RGB stem filters summed into one gray
        channel, the 1000-class classifier left out."""
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        state["conv1.weight"] = state["conv1.weight"].sum(1, keepdim=True)
        missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        if unexpected or set(missing) != {"fc.weight", "fc.bias"}:
            raise ValueError(f"not resnet{self.DEPTH} ImageNet weights (missing {missing[:3]}, unexpected {unexpected[:3]})")

    def freeze_backbone(self):
        """Train the keypoint head alone: the backbone's weights and BatchNorm statistics stay."""
        self.frozen = True
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(name.startswith("fc."))
        return self.train(self.training)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self


class ResNet18Keypoints(ResNetKeypoints):
    DEPTH = 18


class ResNet50Keypoints(ResNetKeypoints):
    DEPTH = 50


ARCHITECTURES = {"net": Net, "naimishnet": NaimishNet, "oneconv": OneConvNet,
                 "smallnet": SmallNet, "keypointnet": KeypointNet, "heatmapnet": HeatmapNet,
                 "resnet18": ResNet18Keypoints, "resnet50": ResNet50Keypoints}
IMAGENET_WEIGHTS = {"resnet18": "ResNet18_Weights.IMAGENET1K_V1", "resnet50": "ResNet50_Weights.IMAGENET1K_V2"}


def load_imagenet_weights(model, arch):
    """Put torchvision's ImageNet weights into a ResNetKeypoints, through torchvision's weights
    API: read from the torch cache ($TORCH_HOME/hub/checkpoints) or downloaded there."""
    import torchvision
    enum_name, member = IMAGENET_WEIGHTS[arch].split(".")
    weights = getattr(getattr(torchvision.models, enum_name), member)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    try:
        state = weights.get_state_dict(progress=False)
    except (OSError, RuntimeError, EOFError) as e:     # no network, a refused or broken download
        raise ValueError(f"{arch} ImageNet weights: not in the torch cache ({cached}) and the download "
                         f"from {weights.url} failed ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    model.load_imagenet(state)


def build_model(config):
    """Rebuild a model from a plain dict: {'arch': name, 'input_size': S, **arch kwargs}."""
    config = dict(config)
    arch = config.pop("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[arch](**config)
    except TypeError as e:    # a keyword the constructor does not take
        raise ValueError(f"{arch}: {e}") from None


def full_config(config):
    """``config`` with every constructor argument its architecture takes filled in (lists
    for tuples), so a checkpoint rebuilds the same net even if a default changes later."""
    config = dict(config)
    if config["arch"] not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {config['arch']!r}; choose from {sorted(ARCHITECTURES)}")
    signature = inspect.signature(ARCHITECTURES[config["arch"]].__init__)
    unknown = sorted(set(config) - {"arch"} - set(signature.parameters))
    if unknown:     # checked without building a model, which would draw from the random generator
        raise ValueError(f"{config['arch']}: got an unexpected keyword argument {unknown[0]!r}")
    for name, param in list(signature.parameters.items())[1:]:
        value = config.get(name, param.default)
        config[name] = list(value) if isinstance(value, tuple) else value
    return config


def count_parameters(model):
    """{'conv': ..., 'fc': ..., 'other': ..., 'total': ...} trainable parameters."""
    counts = {"conv": 0, "fc": 0, "other": 0}
    for module in model.modules():
        kind = ("conv" if isinstance(module, nn.Conv2d) else
                "fc" if isinstance(module, nn.Linear) else "other")
        counts[kind] += sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
    counts["total"] = sum(counts.values())
    return counts
