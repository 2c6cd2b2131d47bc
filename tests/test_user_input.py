"""What users hand the command line: phone photos with EXIF orientation, JPEGs with trailers,
files cut short, folders of look-alike names, and every option out of range."""
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import cli
import data_files
import detect
import evaluate
import train
from conftest import ROOT, SHIPPED_MODEL
from face_detector import FaceDetector
from keypointer import Keypointer
from pipeline import detect_keypoints

# EXIF orientation -> the stored pixels whose upright view is the original (the inverse of the
# viewer's turn: tags 6 and 8 turn the other way, the others are their own inverse)
STORED = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
          8: lambda a: np.rot90(a, -1)}


def encode(rgb, fmt, orientation=1, **options):
    exif = Image.Exif()
    exif[data_files.EXIF_ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, fmt, exif=exif, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt,options", [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True}),
                                         ("TIFF", {})])
def test_every_orientation_tag_is_applied_as_a_photo_viewer_applies_it(fmt, options):
    rgb = np.random.default_rng(0).integers(0, 256, (30, 50, 3), np.uint8)
    for orientation in range(1, 9):
        data = encode(rgb, fmt, orientation, **options)
        viewer = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        ours = data_files.decode_image(data)
        assert ours.shape == viewer.shape, (fmt, orientation)
        assert np.abs(ours.astype(int) - viewer).max() <= 2, (fmt, orientation)


@pytest.fixture(scope="module")
def find_faces():
    detector, keypointer = FaceDetector(), Keypointer(SHIPPED_MODEL)
    return lambda image: detect_keypoints(image, detector, keypointer)


def test_a_sideways_phone_photo_gives_the_upright_photos_keypoints(find_faces):
    upright = detect.sample_image()
    expected = find_faces(upright)
    assert len(expected) == 1
    for orientation in range(1, 9):
        stored = np.ascontiguousarray(STORED[orientation](upright))
        image = data_files.decode_image(encode(stored, "PNG", orientation))
        np.testing.assert_array_equal(image, upright)
        faces = find_faces(image)
        assert len(faces) == 1, orientation
        np.testing.assert_allclose(faces[0]["keypoints"], expected[0]["keypoints"], atol=1e-3)


def test_the_json_describes_the_upright_image(tmp_path):
    upright = detect.sample_image()[:, :400]                  # 512 high, 400 wide
    (tmp_path / "phone.jpg").write_bytes(encode(np.rot90(upright, 1), "JPEG", 6, quality=95))
    out = run_cli(["phone.jpg", "--json", "faces.json"], tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "faces.json").read_text())
    assert (record["width"], record["height"]) == (400, 512) and len(record["faces"]) == 1
    eyes = np.array(record["faces"][0]["keypoints"])[[36, 45]]
    assert eyes[0, 0] < eyes[1, 0] and abs(eyes[0, 1] - eyes[1, 1]) < 15     # level, right eye on the left


def with_thumbnail(jpeg, thumbnail):
    """A JPEG with an APP1 (EXIF-like) segment holding a whole small JPEG, as phones store one."""
    payload = b"Exif\x00\x00" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def test_bytes_after_the_image_are_accepted_and_a_cut_image_is_refused(tmp_path):
    bgr = cv2.cvtColor(detect.sample_image(), cv2.COLOR_RGB2BGR)
    jpeg = with_thumbnail(cv2.imencode(".jpg", bgr)[1].tobytes(), cv2.imencode(".jpg", bgr[::8, ::8])[1].tobytes())
    png = cv2.imencode(".png", bgr)[1].tobytes()
    progressive = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    for name, image, trailer in [("motion.jpg", jpeg, b"\x00\x00ftypmp42" + bytes(5000)), ("trailer.png", png, b"vendor"),
                                 ("progressive.jpg", progressive, b"trailer")]:
        (tmp_path / name).write_bytes(image + trailer)
        complete = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(data_files.load_image(str(tmp_path / name))[..., ::-1], complete)
    for name, data in [("cut.jpg", jpeg[:len(jpeg) * 2 // 3]), ("cut2.jpg", jpeg[:-2]), ("cut.png", png[:-20]),
                       ("cut3.jpg", progressive[:len(progressive) // 2])]:
        (tmp_path / name).write_bytes(data)
        out = run_cli([name], tmp_path)
        assert out.returncode == 1 and out.stderr.strip() == f"error: {name}: truncated image file", out.stderr


def run_cli(args, cwd, script="detect.py"):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], capture_output=True, text=True, cwd=cwd)


def bad_values(action):
    """Values an option must refuse: out of its range, not a number, not a choice, a wrong extension."""
    kind = action.type
    if action.choices:
        return ["nope"]
    if hasattr(kind, "low"):
        values = ["abc", "nan"]
        if kind.low is not None:
            values.append(str(kind.low - 1))
        if kind.above is not None:
            values.append(str(kind.above))
        if kind.high is not None:
            values.append(str(kind.high * 2 + 1))
        return values
    if kind in (cli.existing_file, detect.cascade_option, evaluate.folder_option):
        return ["/no/such/thing"]
    if kind is evaluate.reframe_ratio:
        return ["0.5", "-1"]
    if kind is evaluate.degradation_option:
        return ["blur=x", "nonsense"]
    if kind is detect.right_angles:
        return ["45", "90,x", ""]
    if getattr(kind, "__name__", "") in ("parse", "<lambda>") or kind in (detect.smooth_option, cli.json_object):
        return ["x.txt"] if action.dest in ("json", "ced") else ["nonsense"]
    return []


@pytest.mark.parametrize("module", [detect, train, evaluate])
def test_every_option_out_of_range_is_one_line_and_exit_2(module, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    walked = 0
    for action in module.make_parser()._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        for value in bad_values(action) if flag else []:
            with pytest.raises(SystemExit) as exit_info:
                module.parse_args([flag, value])
            said = capsys.readouterr().err.strip().splitlines()
            assert exit_info.value.code == 2 and len(said) == 1 and said[0].startswith("error: "), (flag, value, said)
            assert "Traceback" not in said[0]
            walked += 1
    numeric = [a for a in module.make_parser()._actions if hasattr(a.type, "low")]
    assert walked >= 2 * len(numeric) and numeric


@pytest.mark.parametrize("args", [["--margin", "-1"], ["-o", "out"], ["-o", "."], ["missing.jpg"], ["--json", "x"]])
def test_a_mistake_is_refused_before_the_model_loads(args, tmp_path):
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); import detect\n"
            f"try:\n    detect.main({args!r})\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, 'torch' in sys.modules, 'onnxruntime' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.stdout.split() == ["2", "False", "False"], run.stdout + run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: ")


def test_a_corrupt_photo_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    monkeypatch.setattr(detect, "Keypointer", lambda *a, **k: pytest.fail("the model loaded first"))
    with pytest.raises(SystemExit, match="error: .*bad.jpg: truncated image file"):
        detect.main([str(tmp_path / "bad.jpg")])


def test_folder_outputs_never_collide_and_subfolders_are_a_choice(tmp_path):
    folder, bgr = tmp_path / "photos", cv2.cvtColor(detect.sample_image(), cv2.COLOR_RGB2BGR)
    (folder / "trip").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.jpg"), bgr)
    cv2.imwrite(str(folder / "a.png"), bgr[:, ::-1])
    cv2.imwrite(str(folder / "trip" / "b.png"), bgr)
    flat = run_cli([str(folder), "-o", "flat", "--json", "-"], tmp_path)
    assert flat.returncode == 0, flat.stderr
    assert sorted(os.listdir(tmp_path / "flat")) == ["a_jpg_keypoints.png", "a_png_keypoints.png"]
    assert "1 sub-folder(s) skipped (trip); --recursive reads them" in flat.stderr
    records = json.loads(flat.stdout)          # standard output holds the JSON alone
    assert [r["image"] for r in records] == ["a.jpg", "a.png"] and all(len(r["faces"]) == 1 for r in records)
    deep = run_cli([str(folder), "-o", "deep", "--recursive"], tmp_path)
    assert deep.returncode == 0, deep.stderr
    assert (tmp_path / "deep" / "trip" / "b_keypoints.png").is_file() and "skipped" not in deep.stderr


def test_onnx_cache_serves_the_same_model_without_torch(tmp_path):
    env = {**os.environ, "FKP_ONNX_CACHE": str(tmp_path / "cache")}
    code = (f"import sys; sys.path.insert(0, {ROOT!r}); import numpy as np; from keypointer import Keypointer\n"
            f"k = Keypointer({SHIPPED_MODEL!r})\n"
            "crops = np.random.default_rng(0).random((2, 1, k.input_size, k.input_size))\n"
            "print(json.dumps([k.predict(crops)[0].tolist(), k.markup, k.input_size, 'torch' in sys.modules]))")
    runs = [subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, env=env)
            for _ in range(2)]
    first, second = (json.loads(r.stdout) for r in runs)
    assert first[3] and not second[3], "the second run should load the cached graph without PyTorch"
    np.testing.assert_allclose(second[0], first[0], atol=1e-5)
    assert first[1:3] == second[1:3]
    assert len(os.listdir(tmp_path / "cache")) == 1
