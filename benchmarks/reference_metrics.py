"""Measure the committed metrics table (tests/metrics/reference.toml); `--write` rewrites it.

Usage::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/reference_metrics.py [--write]

Without ``--write`` it prints the measured sections as JSON and every number that left its
tolerance (exit code 1 when one did), which is what ``tests/metrics/test_reference.py`` and
``tests/reidtrace/test_demo.py`` check. With ``--write`` it rewrites the table (tolerances and,
without ``../shared/data``, the PETS numbers kept) and lists what changed: commit the table with
the change that moved the numbers. The measuring code is ``tests/metrics/reference.py``, shared
with the tests. About 90 s of CPU (under 3 minutes on a busy 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import write_tiny_embedder
from tests.metrics import reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the table with the numbers")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reference_metrics_") as tmp:
        work = Path(tmp)
        measured = reference.measure_world(work / "reference")
        if reference.pets_available():
            measured |= reference.measure_pets(work / "pets")
        else:
            print(f"PETS skipped: {reference.PETS_VIDEO} not found", file=sys.stderr)
        embedder = write_tiny_embedder(work / "tiny.onnx")
        measured |= reference.tiny_demo_sections(reference.run_tiny_demo(work / "tiny", embedder))
    print(json.dumps(measured, indent=1))
    print(f"measured in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.write:
        reference.write_table(measured, note=lambda line: print(line, file=sys.stderr))
        print(f"wrote {reference.TABLE}", file=sys.stderr)
        return
    problems = reference.compare(reference.read_table(), measured)
    for line in problems:
        print(f"moved: {line}", file=sys.stderr)
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
