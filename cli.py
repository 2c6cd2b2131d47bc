"""Command lines that check every option while parsing: a one-line error and exit status 2,
before any model or data loads. Shared by detect.py, train.py and evaluate.py."""
import argparse
import inspect
import json
import math
import os
import sys

IMAGE_OUTPUTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")   # what cv2.imwrite writes
VIDEO_OUTPUTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` (no usage block) for a mistyped option."""

    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


def usage_error(message):
    """A mistake on the command line found after parsing: one line, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def number(kind=float, low=None, high=None, above=None):
    """An argparse type: ``kind`` (int or float), finite, >= low, > above, <= high."""
    noun = "an integer" if kind is int else "a number"

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and value < low or above is not None and value <= above or high is not None and value > high:
            bounds = [f">= {low}" if low is not None else "", f"> {above}" if above is not None else "",
                      f"<= {high}" if high is not None else ""]
            raise argparse.ArgumentTypeError(f"{text} is out of range (must be {' and '.join(b for b in bounds if b)})")
        return value
    parse.kind, parse.low, parse.high, parse.above = kind, low, high, above   # read by the option-walking test
    return parse


fraction = number(float, 0.0, 1.0)       # an argparse type: a number in [0, 1]


def existing_file(text):
    """An argparse type: a path to an existing file."""
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file" + (" (a folder)" if os.path.isdir(text) else ""))
    return text


def output_file(extensions):
    """An argparse type: a file path to write, ending in one of ``extensions``, not a folder."""
    def parse(text):
        if os.path.isdir(text):
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name ending in {'/'.join(extensions)}")
        if not text.lower().endswith(tuple(extensions)):
            raise argparse.ArgumentTypeError(f"{text}: give a file name ending in {'/'.join(extensions)}")
        return text
    return parse


def check_output(path, extensions, what):
    """Exit with a usage error unless ``path`` can take a ``what`` output (its extension, not a folder)."""
    try:
        output_file(extensions)(path)
    except argparse.ArgumentTypeError as e:
        usage_error(f"-o {what}: {e}")


def comment_help(cls):
    """{field: its comment} for a dataclass whose fields are explained by comments (continued on
    comment-only lines below): the one place each knob is explained, shown by --help."""
    helps, name = {}, None
    for line in inspect.getsource(cls).splitlines():
        code, _, comment = line.partition("#")
        if ":" in code and "=" in code:
            name = code.split(":")[0].strip()
            helps[name] = comment.strip()
        elif name and not code.strip() and comment:
            helps[name] += " " + comment.strip()
    return helps


def json_object(text):
    """An argparse type: a JSON object (a dict)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r}: give a JSON object, e.g. '{{\"width\": [32, 64, 128, 256]}}'")
    return value
