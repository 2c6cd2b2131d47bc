"""Keypoint inference on face crops, in eager PyTorch or ONNX Runtime.

`python keypointer.py CHECKPOINT --onnx OUT.onnx` exports the model and checks that
ONNX Runtime's outputs equal PyTorch's within ONNX_TOLERANCE.

The ONNX backend exports a checkpoint once and keeps the graph, with the checkpoint's config
in its metadata, in a cache folder (ONNX_CACHE_ENV, else ~/.cache/facial_keypoints/onnx),
named by a hash of the checkpoint's bytes, the head, the second-stage switch and the source
of the modules that define the graph. A later run loads it without importing PyTorch.
"""
import argparse
import hashlib
import io
import json
import os
import sys
import warnings

import numpy as np

from checkpoint import CheckpointError, load_model
from atomic import write_bytes
from geometry import FRAMING_SCALE, denormalize_keypoints, mirror_points

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "saved_models")
# The in-the-wild model (300-W markup, trained on 300-W photographs and Udacity's frames):
# the default for photographs. The Udacity-markup model is the course's, used by the notebooks
# and by everything scored on Udacity's test split.
DEFAULT_CHECKPOINT = os.path.join(MODEL_DIR, "keypointnet_wild.pt")
UDACITY_CHECKPOINT = os.path.join(MODEL_DIR, "keypointnet.pt")
ONNX_TOLERANCE = 1e-4   # max |onnx - torch| in the [-1, 1] frame (~0.004 px at 80 px)
ONNX_CACHE_ENV = "FKP_ONNX_CACHE"
_GRAPH_SOURCES = ("models.py", "refiner.py", "keypointer.py")   # a change to any re-exports
_METADATA_KEY = "facial_keypoints"


# The face score (0 to 1; detections under MIN_FACE_SCORE are not faces). From the model's
# face head where it has one (train_face_score.py fits it), else from the mean heatmap spread
# in cells: 1 / (1 + exp((spread - at_half) / scale)), calibrated per checkpoint
# (benchmarks/face_score.py --write).
MIN_FACE_SCORE = 0.5


def keypoints_and_spread(model):
    """A module giving a heatmap net's keypoints, mean heatmap spread and (with a face head)
    face logit, one graph."""
    import torch

    class KeypointsAndSpread(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, crops):
            heatmaps, pooled = self.model.heatmaps_and_features(crops)
            prob = self.model.probabilities(heatmaps)
            point_spreads = self.model.point_spreads(prob)
            spread = point_spreads.mean(1)
            keypoints = self.model.refine(crops, self.model.decode(prob), point_spreads)
            if self.model.face_head is None:
                return keypoints, spread
            return keypoints, spread, self.model.face_logit(pooled, spread)
    return KeypointsAndSpread()


def has_spread(model):
    return hasattr(model, "spread")


def export_onnx(model, input_size):
    """The model as ONNX bytes with a dynamic batch dimension; heatmap nets also output
    the mean heatmap spread (the face score's input)."""
    import torch
    buffer = io.BytesIO()
    outputs = ["keypoints", "spread", "face_logit"][:1 + has_spread(model) + (getattr(model, "face_head", None) is not None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(keypoints_and_spread(model) if has_spread(model) else model,
                          torch.zeros(1, 1, input_size, input_size), buffer,
                          input_names=["crops"], output_names=outputs,
                          dynamic_axes={name: {0: "faces"} for name in ["crops"] + outputs},
                          dynamo=False)
    return buffer.getvalue()


def onnx_cache_dir():
    return os.environ.get(ONNX_CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "facial_keypoints", "onnx")


def onnx_cache_path(checkpoint, markup, second_stage):
    """Where the exported graph of this checkpoint, head and second-stage switch is kept."""
    digest = hashlib.sha256()
    try:
        with open(checkpoint, "rb") as f:
            digest.update(f.read())
    except OSError:
        raise CheckpointError(f"{checkpoint}: checkpoint not found") from None
    here = os.path.dirname(os.path.abspath(__file__))
    for name in _GRAPH_SOURCES:
        with open(os.path.join(here, name), "rb") as f:
            digest.update(f.read())
    digest.update(json.dumps([markup, second_stage]).encode())
    return os.path.join(onnx_cache_dir(), digest.hexdigest()[:32] + ".onnx")


def with_metadata(onnx_bytes, config, markup_index, second_stage):
    """The ONNX bytes with the checkpoint's config, chosen head and second-stage switch in the
    model's metadata."""
    import onnx
    graph = onnx.load_from_string(onnx_bytes)
    entry = graph.metadata_props.add()
    entry.key, entry.value = _METADATA_KEY, json.dumps(
        {"config": config, "markup_index": markup_index, "second_stage": second_stage}, default=str)
    return graph.SerializeToString()


def face_score(spread, calibration):
    """Scores in (0, 1) for mean heatmap spreads; 0.5 at the calibrated ``at_half``."""
    z = (np.asarray(spread, np.float64) - calibration["at_half"]) / calibration["scale"]
    return 1 / (1 + np.exp(np.clip(z, -50, 50)))


class Keypointer:
    """Predict 68 keypoints in crop pixels from grayscale crops (N, 1, S, S) in [0, 1]."""

    def __init__(self, checkpoint=DEFAULT_CHECKPOINT, backend="onnx", threads=None, flip=False, markup=None,
                 second_stage=False):
        """``markup``: the head of a multi-markup checkpoint ('300w', 'udacity'); default: its first.
        ``second_stage``: refine the points with the checkpoint's refiner (train_refiner.py):
        True (an error if it has none for this head), False, or 'auto' (where it has one)."""
        if second_stage not in (True, False, "auto"):
            raise ValueError(f"second_stage must be True, False or 'auto', not {second_stage!r}")
        if backend not in ("torch", "onnx"):
            raise ValueError(f"unknown backend {backend!r}; choose torch or onnx")
        self.checkpoint, self._model = checkpoint, None
        self.backend, self.session, self.flip = backend, None, flip
        cached = onnx_cache_path(checkpoint, markup, second_stage) if backend == "onnx" else None
        if cached and os.path.isfile(cached):
            try:
                self.session = self._session(cached, threads)
                meta = json.loads(self.session.get_modelmeta().custom_metadata_map[_METADATA_KEY])
                self._describe(meta["config"], meta["markup_index"], meta["second_stage"])
                return
            except Exception:       # a damaged cache entry (ONNX Runtime raises its own types): export again
                self.session = None
        self._model, self.config = load_model(checkpoint)
        self.markups = self.config.get("markups", ["udacity"])   # checkpoints before 300-W: Udacity only
        if markup is not None:
            if markup not in self.markups:
                raise CheckpointError(f"{checkpoint}: no {markup!r} head (it has {self.markups})")
            self.model.markup = self.markups.index(markup)
        fitted = getattr(self.model, "has_second_stage", lambda: False)()
        if second_stage is True and not fitted:
            raise CheckpointError(f"{checkpoint}: no second stage for its "
                                  f"{self.markups[getattr(self.model, 'markup', 0)]} points "
                                  "(fit one with train_refiner.py)")
        self.model.second_stage = bool(second_stage) and fitted
        markup_index = getattr(self.model, "markup", 0)
        self._describe(self.config, markup_index, self.model.second_stage)
        if backend == "onnx":
            graph = with_metadata(export_onnx(self.model, self.input_size), self.config, markup_index,
                                  self.second_stage)
            try:
                write_bytes(cached, graph)
            except OSError:         # a read-only home: export again next time
                pass
            self.session = self._session(graph, threads)

    def _describe(self, config, markup_index, second_stage):
        """The attributes read from the checkpoint's config: the same from a file or the cache."""
        self.config, self.second_stage = config, second_stage   # whether the refiner runs
        self.markups = config.get("markups", ["udacity"])   # checkpoints before 300-W: Udacity only
        self.markup = self.markups[markup_index]
        # the crop's side: the network's, or the finer one a second stage reads (the network
        # then reads its pixel means; models.HeatmapNet.network_input)
        refiner = config["model"].get("refiner") if second_stage else None
        self.input_size = refiner["input_size"] if refiner else config["model"]["input_size"]
        self.framing_scale = config.get("framing_scale", FRAMING_SCALE)
        # how the face score is made: 'face_head', 'spread' (calibrated), or None (a regression
        # net, or a heatmap net never calibrated)
        self.score_calibration = config.get("face_score")
        is_heatmap_net = config["model"]["arch"] == "heatmapnet"
        self.scored = ("face_head" if is_heatmap_net and config["model"].get("face_head") else
                       "spread" if is_heatmap_net and self.score_calibration else None)

    @staticmethod
    def _session(graph, threads):
        """An ONNX Runtime session on a graph's bytes or file."""
        import onnxruntime as ort
        options = ort.SessionOptions()
        # One thread by default: a face or two per frame gains little from a second, whose
        # idle spinning after each run slowed the Haar cascade that followed by a third
        # (and video.py's reader and writer threads want that core).
        options.intra_op_num_threads = threads or 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    @property
    def model(self):
        """The PyTorch model, rebuilt from the checkpoint when first asked for (an ONNX
        Keypointer loaded from the cache has not needed it)."""
        if self._model is None:
            self._model, _ = load_model(self.checkpoint)
            if hasattr(self._model, "markup"):
                self._model.markup = self.markups.index(self.markup)
            self._model.second_stage = self.second_stage
        return self._model

    def outputs(self, crops):
        """[model output in the [-1, 1] frame (N, 68, 2) float32, then for heatmap nets the mean
        heatmap spread (N,), then with a face head the face logit (N,)]."""
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if self.session is not None:
            out = self.session.run(None, {"crops": crops})
        else:
            import torch
            with torch.inference_mode():
                x = torch.from_numpy(crops)
                out = [t.numpy() for t in keypoints_and_spread(self.model)(x)] if has_spread(self.model) \
                    else [self.model(x).numpy()]
        return [out[0].reshape(len(crops), -1, 2)] + list(out[1:])

    def raw_and_spread(self, crops):
        """(model output in the [-1, 1] frame (N, 68, 2) float32, mean heatmap spread (N,) or None)."""
        out = self.outputs(crops)
        return out[0], (out[1] if len(out) > 1 else None)

    def raw(self, crops):
        """Model output in the [-1, 1] frame, (N, 68, 2) float32."""
        return self.outputs(crops)[0]

    def predict(self, crops):
        """(keypoints in pixels of the S x S crops (N, 68, 2), face scores (N,) or None).
        With ``flip``, the mirrored crops go through the same batch and both are averaged."""
        if len(crops) == 0:
            return np.zeros((0, 68, 2), np.float32), None if self.scored is None else np.zeros(0)
        n = len(crops)
        out = self.outputs(np.concatenate([crops, crops[..., ::-1]]) if self.flip else crops)
        points = denormalize_keypoints(out[0], self.input_size)
        if self.flip:
            points = (points[:n] + mirror_points(points[n:], self.input_size)) / 2
            out = [out[0]] + [(v[:n] + v[n:]) / 2 for v in out[1:]]
        if self.scored == "face_head":
            return points, 1 / (1 + np.exp(-np.clip(out[2].astype(np.float64), -50, 50)))
        if self.scored == "spread":
            return points, face_score(out[1], self.score_calibration)
        return points, None

    def __call__(self, crops):
        """Keypoints in pixels of the S x S crops, (N, 68, 2)."""
        return self.predict(crops)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export a checkpoint to ONNX and verify it.")
    parser.add_argument("checkpoint", nargs="?", default=DEFAULT_CHECKPOINT, help="the checkpoint to export (default: %(default)s)")
    parser.add_argument("--onnx", required=True, help="output .onnx path")
    args = parser.parse_args(argv)
    try:
        torch_kp, onnx_kp = Keypointer(args.checkpoint, "torch"), Keypointer(args.checkpoint, "onnx")
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    crops = np.random.default_rng(0).random((8, 1, torch_kp.input_size, torch_kp.input_size))
    diff = float(np.abs(torch_kp.raw(crops) - onnx_kp.raw(crops)).max())
    write_bytes(args.onnx, export_onnx(torch_kp.model, torch_kp.input_size))
    print(f"wrote {args.onnx}; max |onnx - torch| = {diff:.2e} (tolerance {ONNX_TOLERANCE:.0e})")
    if diff > ONNX_TOLERANCE:
        sys.exit("error: ONNX Runtime output differs from PyTorch beyond the tolerance")


if __name__ == "__main__":
    main()
