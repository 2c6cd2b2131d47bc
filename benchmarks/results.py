"""Write the README's figures from the benchmarks' JSON, so that no figure is copied by hand.

    python benchmarks/results.py            # rewrite the marked blocks of README.md
    python benchmarks/results.py --check    # exit 1 if README.md and the JSON disagree (a test runs this)

Each block sits between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``:
``accuracy`` from saved_models/results/benchmark.json (`make benchmark-update`), ``startup`` from
saved_models/results/startup.json (`benchmarks/startup.py --json ...`), ``video`` from
saved_models/results/video.json (`benchmarks/video.py --json ...`), ``detection`` from
saved_models/results/detection.json (`benchmarks/detection.py --json ...`).
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "saved_models", "results")
README = os.path.join(ROOT, "README.md")


def percent(value):
    return f"{100 * value:.2f} %"


def accuracy_block(benchmark):
    """The results table: each test set, each pipeline; the best figure of a set in bold."""
    lines = ["| test set | pipeline | NME | failure rate | AUC@0.10 | faces detected | ms per face |",
             "|---|---|---:|---:|---:|---:|---:|"]
    sets = list(dict.fromkeys(r["set"] for r in benchmark["rows"]))
    for set_name in sets:
        rows = [r for r in benchmark["rows"] if r["set"] == set_name]
        best = {"nme": min(r["nme"] for r in rows), "failure_rate": min(r["failure_rate"] for r in rows),
                "auc": max(r["auc"] for r in rows)}
        for i, r in enumerate(rows):
            def cell(key, text):
                return f"**{text}**" if r[key] == best[key] else text
            label = f"{set_name} ({r['faces']} faces)" if i == 0 else ""
            lines.append(f"| {label} | {r['name']} | {cell('nme', format(r['nme'], '.4f'))} | "
                         f"{cell('failure_rate', percent(r['failure_rate']))} | {cell('auc', format(r['auc'], '.3f'))} | "
                         f"{percent(r['detection_rate'])} | {r['ms_per_face']:.2f} |")
    lines.append("")
    for name, ratio in benchmark["time_ratios"].items():
        lines.append(f"- {name}: {ratio['loop']:.2f}× dlib's time per face in the pipeline loop "
                     f"({ratio['loop_mean']:.2f}× of the mean, {ratio['warm']:.2f}× warm).")
    return "\n".join(lines)


def startup_block(startup):
    return (f"`--help` {startup['help_s']:.2f} s; a mistyped option refused in {startup['bad_option_s']:.2f} s, "
            f"a corrupt photo in {startup['corrupt_photo_s']:.2f} s; one photo with its JSON in "
            f"{startup['photo_s']:.2f} s ({startup['photo_first_run_s']:.2f} s on the first run, which exports "
            f"the ONNX graph into its cache). Median of {startup['runs']} fresh processes, "
            f"`benchmarks/startup.py`.")


def video_block(video):
    runs = video["clips"]

    def figures(name):
        r = runs[name]
        return f"{r['frames/s']:.1f} frames/s end to end, NME {r['nme']:.4f}, jitter {r['jitter']:.4f}"
    return (f"Video (`benchmarks/video.py`, 640×480 clips with exact points): tracked (the default) "
            f"{figures('tracked (default)')}; detecting every frame (`--no-track`) {figures('--no-track')}"
            + (f"; dlib per frame {figures('dlib per frame')}." if "dlib per frame" in runs else "."))


def detection_block(detection):
    """One row per search (with the face score) and dlib's HOG: recall, false faces, time."""
    rows = {name: r for name, r in detection.items() if name.endswith("+ face score") or name.startswith("dlib")}
    recalls = [k for k in next(iter(rows.values())) if k.startswith("recall")]
    frontal = detection["--search upright"]
    header = [k.replace("|", "\\|") for k in recalls]          # "|yaw|" inside a Markdown table
    lines = ["| search | " + " | ".join(header) + " | false faces | ms per 640×480 frame | ms per face-free image |",
             "|---|" + "---:|" * (len(recalls) + 3)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(percent(r[k]) for k in recalls) +
                     f" | {r['false faces']} | {r['ms per 640x480 frame']:.1f} | {r['ms per face-free image']:.1f} |")
    lines.append("")
    lines.append(f"The upright frontal cascade alone: {frontal['ms per 640x480 frame']:.1f} ms per 640×480 frame, "
                 f"{frontal['ms per face-free image']:.1f} ms per face-free image (`benchmarks/detection.py`).")
    return "\n".join(lines)


BLOCKS = {"accuracy": ("benchmark.json", accuracy_block), "startup": ("startup.json", startup_block),
          "video": ("video.json", video_block), "detection": ("detection.json", detection_block)}


def render(readme_text):
    """The README with every marked block written anew from its JSON."""
    for name, (file, make) in BLOCKS.items():
        with open(os.path.join(RESULTS, file)) as f:
            block = make(json.load(f))
        pattern = re.compile(rf"(<!-- results:{name} -->).*?(<!-- /results:{name} -->)", re.S)
        if not pattern.search(readme_text):
            raise SystemExit(f"error: {README}: no <!-- results:{name} --> block")
        readme_text = pattern.sub(lambda m: f"{m.group(1)}\n{block}\n{m.group(2)}", readme_text)
    return readme_text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare; exit 1 where the README differs")
    args = p.parse_args(argv)
    with open(README) as f:
        current = f.read()
    written = render(current)
    if args.check:
        if written != current:
            sys.exit("error: README.md's results differ from saved_models/results/*.json: run benchmarks/results.py")
        print("README.md agrees with the JSON")
        return
    from atomic import write_bytes
    write_bytes(README, written.encode())
    print("README.md: results written")


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
