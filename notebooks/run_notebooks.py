"""Execute the notebooks top to bottom.

    python notebooks/run_notebooks.py            # smoke mode, outputs discarded (CI)
    python notebooks/run_notebooks.py --write    # full data, outputs written back

Smoke mode sets FKP_SMOKE=1: the notebooks take a tiny subset and one epoch.
"""
import argparse
import glob
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from atomic import write_atomic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = sorted(glob.glob(os.path.join(HERE, "[0-9]*.ipynb")))
CELL_TIMEOUT = 1800


def execute(path, smoke=True, write=False):
    """Run one notebook in its folder; returns the executed notebook."""
    os.environ["FKP_SMOKE"] = "1" if smoke else "0"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": HERE}}).execute()
    if write:
        write_atomic(path, lambda tmp: nbformat.write(notebook, tmp))
    return notebook


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="full mode, write outputs back")
    p.add_argument("notebooks", nargs="*", default=NOTEBOOKS, help="notebooks to run (default: all)")
    args = p.parse_args(argv)
    for path in args.notebooks:
        t0 = time.time()
        try:
            execute(path, smoke=not args.write, write=args.write)
        except Exception as e:  # nbclient's CellExecutionError carries the failing cell
            sys.exit(f"error: {os.path.basename(path)}: {str(e).splitlines()[0]}")
        print(f"{os.path.basename(path)}: {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
