"""Training losses: on the coordinates (SmoothL1, L1, MSE, Wing) and an optional pull of
each heatmap towards a Gaussian at its keypoint (Jensen-Shannon, as in DSNT)."""
import math

import torch


class WingLoss(torch.nn.Module):
    """w * ln(1 + |x| / eps) for |x| < w, |x| - C beyond (C makes the two pieces meet):
    small and medium errors get a larger gradient than L1 gives them. Mean over elements."""

    def __init__(self, width, curvature):
        super().__init__()
        self.width, self.curvature = width, curvature
        self.offset = width - width * math.log1p(width / curvature)

    def forward(self, pred, target):
        error = (pred - target).abs()
        return torch.where(error < self.width, self.width * torch.log1p(error / self.curvature),
                           error - self.offset).mean()


def make_loss(cfg):
    losses = {"smoothl1": torch.nn.SmoothL1Loss(beta=cfg.smooth_l1_beta),
              "l1": torch.nn.L1Loss(), "mse": torch.nn.MSELoss(),
              "wing": WingLoss(cfg.wing_width, cfg.wing_curvature)}
    if cfg.loss not in losses:
        raise ValueError(f"unknown loss {cfg.loss!r}; choose from {sorted(losses)}")
    return losses[cfg.loss]


def gaussian_targets(cell_xy, keypoints, sigma):
    """(N, 68, cells) Gaussians at the keypoints over the heatmap cells, each summing to 1."""
    d2 = ((keypoints[:, :, None, :] - cell_xy[None, None]) ** 2).sum(-1)
    q = torch.exp(-0.5 * d2 / sigma ** 2)
    return q / q.sum(-1, keepdim=True).clamp_min(1e-12)


def js_divergence(p, q, eps=1e-12):
    """Jensen-Shannon divergence between distributions along the last axis, (N, 68)."""
    m = 0.5 * (p + q)
    return 0.5 * ((p * ((p + eps) / (m + eps)).log()).sum(-1) + (q * ((q + eps) / (m + eps)).log()).sum(-1))


def predict(model, images, markups=None):
    """(N, 136) coordinates, each sample from the head of its markup on a multi-head model."""
    if markups is not None and getattr(getattr(model, "module", model), "heads", 1) > 1:   # DDP wraps it
        return model(images, markups)
    return model(images)


EYE_DISTANCE_FLOOR = 0.1   # [-1, 1] frame units (~6 px at 112 px): a profile's eyes nearly meet


def eye_weights(targets):
    """(N, 1) weights proportional to 1 / each face's outer-eye-corner distance (points 36
    and 45), averaging 1 over the batch: errors then count as NME counts them."""
    distance = (targets[:, 45] - targets[:, 36]).norm(dim=-1).clamp_min(EYE_DISTANCE_FLOOR)
    weights = 1 / distance
    return (weights / weights.mean())[:, None]


def compute_loss(model, images, targets, loss_fn, cfg, markups=None):
    """(loss to minimise, coordinate loss): the two differ by the heatmap regulariser
    when ``cfg.heatmap_reg`` > 0 and by the faces' weights when ``cfg.eye_weighted``; the
    plain coordinate loss is the one validation reports. ``markups``: (N,) head indices of a
    multi-head model."""
    if not cfg.heatmap_reg or not hasattr(model, "heatmaps"):
        preds = predict(model, images, markups)
        loss = loss_fn(preds, targets.flatten(1))
        return minimised(loss, preds, targets, loss_fn, cfg), loss
    if getattr(model, "heads", 1) == 1:
        markups = None
    prob = model.probabilities(model.heatmaps(images, markups))
    sigma = cfg.heatmap_sigma * 2.0 / model.grid     # cells -> [-1, 1] frame units
    inside = (targets.abs() <= 1).all(-1)              # keypoints outside the crop get no heatmap
    js = js_divergence(prob, gaussian_targets(model.cell_xy, targets, sigma))
    reg = (js * inside).sum() / inside.sum().clamp_min(1)
    preds = model.decode(prob)
    coordinate_loss = loss_fn(preds, targets.flatten(1))
    return minimised(coordinate_loss, preds, targets, loss_fn, cfg) + cfg.heatmap_reg * reg, coordinate_loss


def minimised(loss, preds, targets, loss_fn, cfg):
    """The coordinate loss to minimise: ``loss``, or with ``cfg.eye_weighted`` each face's errors
    scaled by :func:`eye_weights` (both sides scaled: exact for L1, and for SmoothL1 at the
    default beta, which is L1-like)."""
    if not cfg.eye_weighted:
        return loss
    weights = eye_weights(targets)
    return loss_fn(preds * weights, targets.flatten(1) * weights)
