"""Figures for the notebooks: faces with keypoints, loss curves, filters, feature maps."""
import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch

from geometry import denormalize_keypoints
from markup import LEFT_SIDE, RIGHT_SIDE

SIDE_COLOURS = {"right": "orange", "left": "deepskyblue"}   # the subject's sides: right on the image's left


def to_display(image):
    """A tensor (C, H, W) or array (H, W[, C]) -> array for imshow."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    return np.asarray(image)


def image_size(image):
    """(height, width) of a tensor (C, H, W) or an array (H, W[, C])."""
    return tuple(int(v) for v in (image.shape[-2:] if isinstance(image, torch.Tensor) else image.shape[:2]))


def show_keypoints(ax, image, keypoints=None, truth=None, normalized=False, title=None, sides=False):
    """Image with predicted (magenta) and ground-truth (green) keypoints: the colour code of
    every notebook.

    ``normalized``: keypoints are in the [-1, 1] frame of the (square) image.
    ``sides``: colour the points of the subject's right side (the image's left) orange and of
    the left side blue (SIDE_COLOURS) instead; the midline stays white.
    """
    image = to_display(image)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    size = image.shape[1]
    for points, style in ((truth, dict(c="lime", s=10)), (keypoints, dict(c="magenta", s=10))):
        if points is None:
            continue
        points = np.asarray(points, np.float32).reshape(-1, 2)
        if normalized:
            points = denormalize_keypoints(points, size)
        if sides:
            colours = np.full(len(points), "white", object)
            colours[RIGHT_SIDE] = SIDE_COLOURS["right"]
            colours[LEFT_SIDE] = SIDE_COLOURS["left"]
            style = dict(c=list(colours), s=12)
        ax.scatter(points[:, 0], points[:, 1], marker=".", **style)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")


def show_on_face(ax, image, faces, truth, title=""):
    """The annotated face of a photograph, zoomed in: the detection that matches it
    (magenta; ``faces`` as pipeline.detect_keypoints gives them), the annotation (green),
    and its NME, or 'missed' where no detection matches."""
    from geometry import keypoint_box
    from framing import match_box
    from metrics import nme_per_face
    boxes = np.array([f["box"] for f in faces], np.float64).reshape(-1, 4)
    j = match_box(boxes, truth)
    (cx, cy), side = keypoint_box(truth)
    x0, y0 = int(max(0, cx - 0.75 * side)), int(max(0, cy - 0.75 * side))
    crop = image[y0:int(cy + 0.75 * side), x0:int(cx + 0.75 * side)]
    offset = np.array([x0, y0], np.float32)
    pred = None if j is None else faces[j]["keypoints"] - offset
    score = "missed" if j is None else f"NME {nme_per_face(faces[j]['keypoints'], truth):.3f}"
    show_keypoints(ax, crop, pred, truth - offset, title=f"{title}\n{score}".strip())


def grid(n, cols=4, size=3.0):
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def plot_history(history, title="Loss per epoch", ax=None):
    """Train and validation loss in one plot (log scale)."""
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation (unseen people)")
    ax.set(xlabel="epoch", ylabel="SmoothL1 loss", yscale="log", title=title)
    ax.legend()
    return ax


def first_conv(model):
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def show_filters(weights, cols=8):
    """Kernels (N, 1, k, k) as a grid of gray images."""
    weights = weights.detach().cpu().numpy()[:, 0]
    fig, axes = grid(len(weights), cols, 1.2)
    for ax, w in zip(axes, weights):
        ax.imshow(w, cmap="gray")
        ax.axis("off")
    return fig


def filter_responses(gray, weights):
    """Each first-layer kernel applied to a gray image with cv2.filter2D."""
    image = gray.astype(np.float32) / 255.0
    return [cv2.filter2D(image, -1, w[0]) for w in weights.detach().cpu().numpy()]


def feature_maps(model, x, layer):
    """The output of ``layer`` (a module of ``model``) for input ``x``: (C, H, W)."""
    captured = {}
    handle = layer.register_forward_hook(lambda m, i, o: captured.setdefault("out", o.detach()))
    with torch.no_grad():
        model.eval()(x)
    handle.remove()
    return captured["out"][0].cpu().numpy()


def keypoint_heatmaps(model, x):
    """A heatmap net's per-keypoint probabilities for one crop ``x`` (1, 1, S, S): (68, g, g)."""
    with torch.no_grad():
        prob = model.eval().probabilities(model.heatmaps(x))
    return prob[0].reshape(len(prob[0]), model.grid, model.grid).cpu().numpy()


def show_heatmaps(face, prob, keypoints=(36, 30, 48, 8)):
    """The crop with every keypoint's heatmap overlaid (max over keypoints), then a few alone."""
    fig, axes = grid(1 + len(keypoints), 1 + len(keypoints), 2.6)
    side = face.shape[0]
    axes[0].imshow(face, cmap="gray")
    axes[0].imshow(cv2.resize(prob.max(0), (side, side), interpolation=cv2.INTER_NEAREST), alpha=0.55)
    axes[0].set_title("all 68 heatmaps", fontsize=9)
    for ax, k in zip(axes[1:], keypoints):
        ax.imshow(face, cmap="gray")
        ax.imshow(cv2.resize(prob[k], (side, side), interpolation=cv2.INTER_NEAREST), alpha=0.6)
        ax.set_title(f"keypoint {k}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig


def compose_canvas(images, cols=3, cell=320, background=110):
    """Several RGB images on one canvas, each scaled to fit a cell (for multi-face demos)."""
    rows = (len(images) + cols - 1) // cols
    canvas = np.full((rows * cell, cols * cell, 3), background, np.uint8)
    for i, image in enumerate(images):
        scale = 0.9 * cell / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y = (i // cols) * cell + (cell - image.shape[0]) // 2
        x = (i % cols) * cell + (cell - image.shape[1]) // 2
        canvas[y:y + image.shape[0], x:x + image.shape[1]] = image
    return canvas
