"""Atomic writes: readers see a file's old content or its new content, never half of it."""
import json
import os


def write_atomic(path, write):
    """Call ``write(tmp_path)`` on a temporary file beside ``path`` (same extension, so
    writers that go by it still work), then rename it over ``path``; on failure the
    temporary file is removed and ``path`` is untouched."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp{os.getpid()}{ext}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    write_atomic(path, write)


def write_json(path, obj):
    """``obj`` as indented JSON, atomically."""
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())
