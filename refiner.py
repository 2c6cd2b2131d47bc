"""A second stage after the network: cascaded linear regression on shape-indexed gradients.

The network's 68 points are refined by a few stages (the supervised descent method, Xiong &
De la Torre, 2013, with ridge regression). Each stage reads the crop's gradient at a small
grid of cells around every point, the grid turned and scaled with the face (a similarity
fitted to a mean shape), and moves all points at once by a low-rank linear map of those
readings. Stages start wide and end narrow. The crop is the one the network saw, so the
refiner rides in the same ONNX graph (models.HeatmapNet.refiner); it is written with few,
simple operations, since ONNX Runtime's cost per operation dominates at this size.
train_refiner.py fits it.
"""
import torch
from torch import nn

from markup import LEFT_EYE_OUTER, NUM_KEYPOINTS, RIGHT_EYE_OUTER

# The shipped refiner's settings (docs/experiments.md, "A second stage"). RADII: each stage's
# cell spacing around a point, in units of the mean shape's outer-eye-corner distance (0.04 is
# about 1 px of an 80 px crop). GRID x GRID cells per point. RANK: each stage's map's rank.
RADII = (0.1, 0.07, 0.05, 0.035)
GRID, RANK = 3, 32
READINGS = 4    # per cell: the gradient (x, y) and its magnitude per axis (|x|, |y|)


def similarity(shapes, mean):
    """(N, 2): (a, b) of the similarity [[a, -b], [b, a]] that best maps each centred shape
    (N, 68, 2) onto the centred mean shape (68, 2), least squares: one product with a basis
    made from the mean alone, which the exported graph holds as a constant."""
    s = (shapes - shapes.mean(1, keepdim=True)).flatten(1)
    m = mean - mean.mean(0)
    basis = torch.stack([m.flatten(), torch.stack([m[:, 1], -m[:, 0]], -1).flatten()], 1)   # (136, 2)
    return (s @ basis) / (s * s).sum(1, keepdim=True).clamp_min(1e-12)


def pixels_from_mean_frame(ab, scale):
    """(N, 2, 2) matrices T with ``vectors @ T`` = vectors (N, K, 2) of the mean shape's frame
    back in the shape's own, times ``scale``: the inverse of the similarity (a, b), which is
    [[a, -b], [b, a]] / (a^2 + b^2), made by one product with a constant."""
    spread = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, -1.0, 1.0, 0.0]], device=ab.device)
    return (ab @ spread).reshape(-1, 2, 2) * (scale / (ab * ab).sum(1))[:, None, None]


def to_indices(points, size):
    """[-1, 1] frame -> pixel indices of an S x S crop (pixel i spans [i, i + 1), its centre at
    index i): rounding gives the nearest pixel."""
    return (points + 1) * (size / 2) - 0.5


def from_indices(indices, size):
    """The inverse of :func:`to_indices`."""
    return (indices + 0.5) / (size / 2) - 1


class ShapeRefiner(nn.Module):
    """Refines (N, 68, 2) points in the [-1, 1] frame of (N, 1, S, S) crops. Buffers: the mean
    shape and each stage's linear map (``down``, ``down_bias``, then ``up``)."""

    def __init__(self, input_size=80, radii=RADII, grid=GRID, rank=RANK, markup=0, gate=None):
        super().__init__()
        # markup: the output head whose points this refiner was fitted on (other heads pass through)
        self.size, self.radii, self.grid, self.rank, self.markup = input_size, tuple(radii), grid, rank, markup
        # gate: (spread, points), see gated(); None refines every face
        self.gate = tuple(gate) if gate else None
        self.features = NUM_KEYPOINTS * grid * grid * READINGS
        self.register_buffer("mean_shape", torch.zeros(NUM_KEYPOINTS, 2))
        self.register_buffer("down", torch.zeros(len(radii), self.features, rank))
        self.register_buffer("down_bias", torch.zeros(len(radii), rank))
        self.register_buffer("up", torch.zeros(len(radii), rank, 2 * NUM_KEYPOINTS))
        steps = torch.arange(grid, dtype=torch.float32) - (grid - 1) / 2
        ys, xs = torch.meshgrid(steps, steps, indexing="ij")
        self.register_buffer("cells", torch.stack([xs, ys], -1).reshape(-1, 2), persistent=False)
        kernel = torch.zeros(2, 1, 3, 3)             # central differences along x and y
        kernel[0, 0, 1, 2] = kernel[1, 0, 2, 1] = 1
        kernel[0, 0, 1, 0] = kernel[1, 0, 0, 1] = -1
        self.register_buffer("kernel", kernel, persistent=False)
        # a cell's (x, y) pixel indices -> its row in the gradient: x + S y
        self.register_buffer("row_step", torch.tensor([1.0, input_size]), persistent=False)

    def prepare(self, crops, shapes):
        """What every stage reads, computed once: the crop's gradient as pixel rows (N * S * S, 2),
        each crop's first row, every stage's cell offsets in the mean shape's frame, and the
        matrices from that frame to crop pixels. One similarity serves every stage: together
        they move the points by a pixel or two."""
        size = self.size                     # a constant size keeps shape arithmetic out of the graph
        gradient = nn.functional.conv2d(nn.functional.pad(crops, (1, 1, 1, 1), mode="replicate"), self.kernel)
        rows = gradient.permute(0, 2, 3, 1).reshape(-1, 2)
        # 0, S * S, 2 S * S, ... from the batch itself, so the exported graph keeps a dynamic batch
        first_row = (torch.ones_like(crops[:, 0, :1, :1], dtype=torch.long).cumsum(0) - 1) * (size * size)
        to_pixels = pixels_from_mean_frame(similarity(shapes, self.mean_shape), size / 2)
        eye = (self.mean_shape[LEFT_EYE_OUTER] - self.mean_shape[RIGHT_EYE_OUTER]).norm()
        cells = self.cells * (torch.tensor(self.radii, device=crops.device)[:, None, None] * eye)   # (stages, cells, 2)
        return rows, first_row, cells, to_pixels

    def readings(self, prepared, pixels, stage):
        """(N, features): the gradient at the stage's cells around each point (``pixels``:
        (N, 68, 2) pixel indices), nearest pixel, each point's readings scaled to unit length."""
        rows, first_row, cells, to_pixels = prepared
        at = (pixels[:, :, None, :] + (cells[stage] @ to_pixels)[:, None]).round().clamp(0, self.size - 1)
        # whole numbers, exact in float32 within a crop; the batch offset is added as integers
        values = rows[(at * self.row_step).sum(-1).long() + first_row]     # (N, 68, cells, 2)
        values = torch.cat([values, values.abs()], -1).reshape(-1, NUM_KEYPOINTS, self.grid ** 2 * READINGS)
        return (values / (values.norm(dim=-1, keepdim=True) + 1e-3)).reshape(-1, self.features)

    def step(self, features, stage):
        """(N, 68, 2) moves in the mean shape's frame, from a stage's features."""
        return ((features @ self.down[stage] + self.down_bias[stage]) @ self.up[stage]).reshape(-1, NUM_KEYPOINTS, 2)

    def forward(self, crops, shapes):
        prepared = self.prepare(crops, shapes)
        pixels = to_indices(shapes, self.size)
        for stage in range(len(self.radii)):
            pixels = pixels + self.step(self.readings(prepared, pixels, stage), stage) @ prepared[-1]
        return from_indices(pixels, self.size)


def gated(gate, point_spreads, refined, keypoints):
    """``refined`` where the face's heatmaps are compact, else the network's ``keypoints`` (both
    (N, 136)): with gate (spread, points), a face keeps its refined points when fewer than
    ``points`` of its 68 heatmaps spread wider than ``spread`` cells. A covered eye or mouth
    spreads its maps, and there the stage, which moves every point from the gradients around
    all of them, reads the block's edges and costs more than it gains (docs/experiments.md)."""
    if gate is None:
        return refined
    spread, points = gate
    compact = (point_spreads > spread).sum(1, keepdim=True) < points
    return torch.where(compact, refined, keypoints)


def fit_stage(features, moves, l2, rank):
    """(down, down_bias, up): the rank-``rank`` ridge map from features (N, F) to moves (N, 136)."""
    x = torch.cat([features, torch.ones_like(features[:, :1])], 1).double()
    penalty = l2 * torch.eye(x.shape[1], dtype=torch.float64)
    penalty[-1, -1] = 0                          # the bias is not shrunk
    full = torch.linalg.solve(x.T @ x + penalty, x.T @ moves.double())
    # reduced-rank regression: keep the fitted moves' top principal directions
    _, _, vh = torch.linalg.svd(x @ full, full_matrices=False)
    down = (full @ vh[:rank].T).float()
    return down[:-1], down[-1], vh[:rank].float()


def prepare_in_batches(refiner, crops, shapes, batch=256):
    """ShapeRefiner.prepare over a whole training set, a batch at a time: one convolution over
    tens of thousands of crops would take tens of GB for its working buffer."""
    parts = [refiner.prepare(crops[i:i + batch], shapes[i:i + batch]) for i in range(0, len(crops), batch)]
    first_row = torch.arange(len(crops))[:, None, None] * (refiner.size * refiner.size)
    return torch.cat([p[0] for p in parts]), first_row, parts[0][2], torch.cat([p[3] for p in parts])


@torch.no_grad()
def fit_refiner(refiner, crops, shapes, targets, l2, log=None):
    """Fit every stage in turn on crops (N, 1, S, S), the network's points (N, 68, 2) and the
    true points, all in the [-1, 1] frame; each stage learns from the points the previous ones
    give. ``log(stage, points)`` after each. Returns the refined training points."""
    refiner.mean_shape.copy_(targets.mean(0))
    if crops.shape[-1] != refiner.size:
        raise ValueError(f"crops of {crops.shape[-1]} px for a refiner of {refiner.size} px")
    prepared = prepare_in_batches(refiner, crops, shapes)
    to_pixels = prepared[-1]
    pixels, goal = to_indices(shapes, refiner.size), to_indices(targets, refiner.size)
    to_mean = torch.linalg.inv(to_pixels)
    for stage in range(len(refiner.radii)):
        features = refiner.readings(prepared, pixels, stage)
        fitted = fit_stage(features, ((goal - pixels) @ to_mean).flatten(1), l2, refiner.rank)
        refiner.down[stage], refiner.down_bias[stage], refiner.up[stage] = fitted
        pixels = pixels + refiner.step(features, stage) @ to_pixels
        if log is not None:
            log(stage, from_indices(pixels, refiner.size))
    return from_indices(pixels, refiner.size)
