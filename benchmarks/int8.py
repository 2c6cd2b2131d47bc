"""Does int8 pay? ONNX Runtime static quantisation of a checkpoint's graph: time per face and LFPW test NME.

    python benchmarks/int8.py [--checkpoint saved_models/keypointnet_wild.pt] [--calibration-images 150]
                              [--json outputs/int8.json]

Calibration crops come from LFPW's *training* photographs through the pipeline's own framing; the
scores are on LFPW's test set (annotation framing and the Haar pipeline). Rows: the float graph,
int8 convolutions only (QDQ, per-channel weights), and every quantisable operator.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import evaluate  # noqa: E402
import keypointer as kp_module  # noqa: E402
from atomic import write_json  # noqa: E402
from data_300w import find_300w_dir  # noqa: E402
from face_detector import FaceDetector  # noqa: E402

VARIANTS = {"int8 convolutions": ["Conv"], "int8 everything": None}


def calibration_crops(keypointer, photographs, images):
    """The crops the pipeline feeds the network on ``images`` training photographs."""
    crops, forward = [], keypointer.outputs

    def recording(batch):
        crops.extend(np.array(batch[i:i + 1], np.float32) for i in range(len(batch)))
        return forward(batch)

    keypointer.outputs = recording
    find_boxes, landmarks = evaluate.cnn_pipeline(keypointer, "haar", FaceDetector())
    evaluate.run_on_dataset(evaluate.load_faces([photographs]), find_boxes, landmarks, images)
    keypointer.outputs = forward
    return crops


def quantize(graph_path, crops, ops, out_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter({"crops": c} for c in crops)

        def get_next(self):
            return next(self.batches, None)

    prepared = out_path + ".pre.onnx"
    quant_pre_process(graph_path, prepared, skip_symbolic_shape=True)
    options = dict(quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                   weight_type=QuantType.QInt8)
    quantize_static(prepared, out_path, Reader(), **options, **({"op_types_to_quantize": ops} if ops else {}))


def score(keypointer, photographs):
    row = {"ms per face (warm, batch of one)": evaluate.time_per_face(keypointer)}
    for framing in ("gt", "haar"):
        find_boxes, landmarks = evaluate.cnn_pipeline(keypointer, framing, FaceDetector() if framing == "haar" else None)
        summary = evaluate.score(evaluate.run_on_dataset(evaluate.load_faces([photographs]), find_boxes, landmarks))
        row[f"LFPW test, {framing} framing"] = {k: summary[k] for k in ("nme", "failure_rate", "auc")}
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=kp_module.DEFAULT_CHECKPOINT)
    p.add_argument("--calibration-images", type=int, default=150, help="LFPW training photographs (default: 150)")
    p.add_argument("--json", help="write the table here")
    args = p.parse_args(argv)
    root = find_300w_dir()
    if root is None:
        sys.exit("error: no 300-W copy ($FKP_300W_DIR or ../shared/data/300w)")
    keypointer = kp_module.Keypointer(args.checkpoint, second_stage="auto")
    graph = kp_module.onnx_cache_path(args.checkpoint, None, "auto")
    crops = calibration_crops(keypointer, os.path.join(root, "lfpw", "trainset"), args.calibration_images)
    table = {"calibration crops": len(crops), "float": score(keypointer, os.path.join(root, "lfpw", "testset"))}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ops in VARIANTS.items():
            out = os.path.join(tmp, "int8.onnx")
            quantize(graph, crops, ops, out)
            keypointer.session = kp_module.Keypointer._session(out, None)
            table[name] = score(keypointer, os.path.join(root, "lfpw", "testset"))
    print(json.dumps(table, indent=2))
    if args.json:
        write_json(args.json, table)


if __name__ == "__main__":
    main()
