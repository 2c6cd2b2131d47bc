"""Landmark accuracy: NME normalised by the outer-eye-corner distance, CED and AUC."""
import numpy as np

from markup import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

FAILURE_THRESHOLD = 0.10


def point_errors(pred, target):
    """Each point's error / ground-truth outer-eye distance: (..., 68)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    eyes = np.linalg.norm(target[..., RIGHT_EYE_OUTER, :] - target[..., LEFT_EYE_OUTER, :], axis=-1)
    return np.linalg.norm(pred - target, axis=-1) / eyes[..., None]


def nme_per_face(pred, target):
    """Mean point-to-point error / ground-truth outer-eye distance, per face: (N,)."""
    return point_errors(pred, target).mean(axis=-1)


def ced_curve(nmes, threshold=FAILURE_THRESHOLD, steps=1000):
    """(thresholds, fraction of faces with NME <= threshold) on [0, threshold]."""
    xs = np.linspace(0.0, threshold, steps + 1)
    nmes = np.sort(np.asarray(nmes))
    return xs, np.searchsorted(nmes, xs, side="right") / max(len(nmes), 1)


def summarize(nmes, threshold=FAILURE_THRESHOLD):
    """{'nme', 'failure_rate', 'auc', 'faces'}; AUC of the CED up to ``threshold``, in [0, 1]."""
    nmes = np.asarray(nmes, np.float64)
    xs, ys = ced_curve(nmes, threshold)
    auc = float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / threshold)
    return {"nme": float(nmes.mean()), "failure_rate": float((nmes > threshold).mean()),
            "auc": auc, "faces": int(len(nmes))}


def heatmap_spread(prob):
    """RMS distance, in cells, of each heatmap's mass from its mean: (K, g, g) -> (K,)."""
    cells = np.arange(prob.shape[-1])
    px, py = prob.sum(1), prob.sum(2)                 # marginals over x and over y
    mx, my = px @ cells, py @ cells
    return np.sqrt(np.maximum(px @ cells ** 2 - mx ** 2 + py @ cells ** 2 - my ** 2, 0))
