"""The committed metrics table (``reference.toml``): how its numbers are measured and compared.

The table holds what the shipped defaults score on fixed inputs: the bundled ReID model on a
small seeded world's Market crops, the default tracker behind the default detector (NanoDet
INT8) and behind the oracle detector (ground-truth boxes: the tracker alone) on that world, the
same tracker on the real PETS clip (when ``../shared`` is there) and the tiny demo of
``tests/reidtrace/test_demo.py``. ``tests/metrics/test_reference.py`` measures them again and
fails when any number leaves its tolerance, in either direction: an improvement must update
the table on purpose, so a tracker rewrite that should change nothing is caught when it does.

``benchmarks/reference_metrics.py --write`` rewrites the table with this module's code, so the
test and the regeneration can never measure two different things.
"""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path

import cv2

from indexer.ingest import IngestConfig, ingest
from indexer.ingest.evaluate import evaluate_tracking, export_tracks
from indexer.settings import IndexSettings
from reid.data.mot import read_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.evaluate.tracking import score_tracking
from reid.synth.world import WorldConfig
from reid.video import probe, read_frames
from reidtrace.demo import run_demo
from tests.conftest import SHARED_DATA, TINY

TABLE = Path(__file__).with_name("reference.toml")
REGENERATE = "python benchmarks/reference_metrics.py --write"

# 4 cameras x 30 s (the demo world's cameras, a quarter of its length), few one-camera passers
# and three test identities in four, so the crops give 18 queries: about 60 s on one core
WORLD = WorldConfig(
    seed=7, cameras=4, identities=32, groups=4, minutes=0.5, test_frac=0.75, passer_frac=0.1
)

PETS_VIDEO = SHARED_DATA / "pets2009_s2l1_view001_480x360.avi"
PETS_GT = SHARED_DATA / "mot" / "PETS09-S2L1-first-half" / "gt" / "gt.txt"
PETS_FRAMES = 397  # the truth covers frames 1-397 only
PETS_SCALE = 0.625  # the truth is in the original 768x576 pixels; the clip is 480x360
PETS_MIN_BOTTOM = 100.0  # people whose box ends above this row are not annotated

# How far a measured number may move before the test fails, by metric name; metrics not named
# here (counts that describe the inputs) must match exactly. Written into the table.
TOLERANCES: dict[str, float] = {
    "mAP": 0.5,  # percentage points
    "rank1": 0.5,  # percentage points: with 18 queries, any changed query fails
    "mota": 0.005,
    "idf1": 0.005,
    "id_switches": 2,
}

HEADER = f"""\
# Reference metrics of the shipped defaults on fixed inputs; tests/metrics/test_reference.py
# measures them again and fails when a number moves outside its tolerance IN EITHER DIRECTION.
# An improvement is a change too: check it, then regenerate this file on purpose and commit it
# with the change that caused it:
#
#     OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 {REGENERATE}
#
# (about 90 s of CPU, under 3 minutes on a busy 2-core machine; the PETS section needs
# ../shared/data, and the script keeps the old PETS numbers when that folder is absent).
#
# [tolerance]        allowed |measured - table| per metric name, in the metric's own units
#                    (mAP and rank1 in percentage points, mota and idf1 as fractions,
#                    id_switches in switches); names not listed must match exactly.
# [world]            the reference world (WorldConfig in tests/metrics/reference.py): queries,
#                    gallery crops and truth boxes; a change here means the renderer changed.
# [reid]             the bundled ReID model on that world's Market crops (Market-1501 protocol).
# [tracking]         ingestion with IngestConfig() defaults (NanoDet INT8, two-stage DeepSORT),
#                    scored like `reidtrace evaluate-tracking`.
# [tracking_oracle]  the same with IngestConfig(detector="oracle"): the truth boxes as
#                    detections, so only the tracker moves these numbers.
# [pets]             the default tracker on the real PETS 2009 S2.L1 clip, frames 1-397, against
#                    its MOT15 truth (x 0.625, tracked boxes ending above y = 100 px dropped).
# [tiny_demo_*]      world, reid and tracking of `run_demo` on tests/conftest.py's TINY world
#                    with its tiny flatten embedder (tests/reidtrace/test_demo.py).
#
# The reference world and PETS run ONNX Runtime on one thread (the tiny demo as its test runs
# it); repeated runs gave the same numbers.
"""

Section = dict[str, float]
# the table's sections in the order it lists them
SECTIONS = (
    "world", "reid", "tracking", "tracking_oracle", "pets",
    "tiny_demo_world", "tiny_demo_reid", "tiny_demo_tracking",
)  # fmt: skip


def demo_sections(summary: dict) -> dict[str, Section]:
    """The table's view of a ``run_demo`` summary: its world, ReID and tracking numbers."""
    reid, tracking = summary["reid"], summary["tracking"]
    return {
        "world": {
            "num_query": reid["num_query"],
            "num_gallery": reid["num_gallery"],
            "gt_boxes": summary["world"]["gt_boxes"],
        },
        "reid": {"mAP": round(reid["mAP"], 2), "rank1": round(reid["rank1"], 2)},
        "tracking": _tracking(tracking),
    }


def measure_world(workdir: Path) -> dict[str, Section]:
    """The reference world through the demo (render, ReID, ingest, score), then the oracle."""
    summary = run_demo(workdir / "world", world_config=WORLD, workers=1, threads=1)
    if summary["ingest_errors"] or not summary["index_ok"]:
        raise RuntimeError(f"the reference world did not ingest cleanly: {summary}")
    out = demo_sections(summary)
    world, oracle = workdir / "world", workdir / "oracle"
    db_url = f"sqlite:///{oracle / 'reidtrace.db'}"
    cfg = IngestConfig(detector="oracle", threads=1)
    _ingest([world], db_url, oracle, cfg)
    out["tracking_oracle"] = _tracking(evaluate_tracking(world, db_url=db_url))
    return out


def run_tiny_demo(workdir: Path, embedder: Path) -> dict:
    """``run_demo`` on the tiny world with the tiny embedder (``tests/reidtrace/test_demo.py``)."""
    return run_demo(workdir / "demo", workers=1, model=str(embedder), world_config=TINY)


def tiny_demo_sections(summary: dict) -> dict[str, Section]:
    return {f"tiny_demo_{k}": v for k, v in demo_sections(summary).items()}


def pets_available() -> bool:
    return PETS_VIDEO.is_file() and PETS_GT.is_file()


def measure_pets(workdir: Path) -> dict[str, Section]:
    """Default ingestion of PETS frames 1-397 (written losslessly as PNGs), scored in the
    annotated area. Ingesting a frame folder stops the tracker where the truth stops."""
    frames = workdir / "pets_frames"
    frames.mkdir(parents=True)
    for k, frame in read_frames(probe(PETS_VIDEO)):
        if k >= PETS_FRAMES:
            break
        cv2.imwrite(str(frames / f"{k + 1:06d}.png"), frame, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    db_url = f"sqlite:///{workdir / 'pets.db'}"
    cfg = IngestConfig(threads=1)
    _ingest([frames], db_url, workdir, cfg, camera="pets", start="2009-01-01T00:00:00Z")
    hyp = read_mot(export_tracks("pets", workdir / "pets.txt", db_url=db_url))
    return {"pets": _tracking(score_pets(hyp))}


def score_pets(hyp: Detections) -> dict:
    """``score_tracking`` of tracked PETS boxes against the truth, inside the annotated area."""
    gt = read_mot(PETS_GT)
    gt = Detections(
        xyxy=gt.xyxy * PETS_SCALE,
        confidence=gt.confidence,
        frame_idx=gt.frame_idx,
        track_id=gt.track_id,
    )
    return score_tracking(gt, hyp[hyp.xyxy[:, 3] >= PETS_MIN_BOTTOM])


def _ingest(paths: list[Path], db_url: str, folder: Path, cfg: IngestConfig, **kw: str) -> None:
    report = ingest(
        paths,
        db_url=db_url,
        index_path=folder / "index.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        **kw,
    )
    if not report.ok:
        raise RuntimeError(f"ingesting {paths} failed: {report.as_dict()['videos']}")


def _tracking(scores: dict) -> Section:
    return {
        "mota": round(scores["mota"], 4),
        "idf1": round(scores["idf1"], 4),
        "id_switches": int(scores["id_switches"]),
    }


def read_table(path: Path = TABLE) -> dict[str, Section]:
    """The committed table (sections of metric -> number, plus ``tolerance``)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ReidTraceError(
            f"cannot read the metrics table {path}: {err}", hint=f"regenerate it: {REGENERATE}"
        ) from err


def compare(table: dict[str, Section], measured: dict[str, Section]) -> list[str]:
    """One line per measured number outside its tolerance (or missing from the table)."""
    tolerance = table.get("tolerance", {})
    problems = []
    for section, values in measured.items():
        for key, new in values.items():
            old = table.get(section, {}).get(key)
            tol = float(tolerance.get(key, 0))
            if old is None:
                problems.append(f"{section}.{key}: not in the table (measured {new})")
            elif abs(new - old) > tol + 1e-9:
                way = "better" if _better(key, new, old) else "worse"
                problems.append(
                    f"{section}.{key}: table {old}, measured {new} "
                    f"({new - old:+.4g}, tolerance {tol:g}; {way})"
                )
    return problems


def check(table: dict[str, Section], measured: dict[str, Section]) -> None:
    """Fail (``AssertionError``, for pytest) naming every metric that moved."""
    problems = compare(table, measured)
    if problems:
        raise AssertionError(
            f"metrics moved against {TABLE.name}:\n  "
            + "\n  ".join(problems)
            + f"\nIf the change is intended, regenerate the table and commit it: {REGENERATE}"
        )


def _better(key: str, new: float, old: float) -> bool:
    return new < old if key == "id_switches" else new > old


def write_table(
    measured: dict[str, Section], path: Path = TABLE, note: Callable[[str], None] = print
) -> None:
    """Rewrite the table: tolerances kept from the old file (else the defaults above), sections
    not measured now (PETS without ``../shared``) kept as they were; ``note`` hears each change."""
    old = read_table(path) if path.is_file() else {}
    unknown = (set(old) | set(measured)) - set(SECTIONS) - {"tolerance"}
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}: add them to SECTIONS")
    for line in compare({**old, "tolerance": {}}, measured):
        note(f"changed: {line}")
    sections = {"tolerance": {**TOLERANCES, **old.get("tolerance", {})}}
    sections |= {name: measured.get(name) or old[name] for name in SECTIONS
                 if name in measured or name in old}  # fmt: skip
    lines = [HEADER + f"# Written at commit {_commit()}.\n"]
    for name, values in sections.items():
        lines.append(f"\n[{name}]\n")
        lines += [f"{key} = {_number(v)}\n" for key, v in values.items()]
    path.write_text("".join(lines), encoding="utf-8")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _commit() -> str:
    """The code the numbers came from (``git describe``), for whoever reads the table later."""
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=TABLE.parent,
            timeout=10,
        )
    except OSError:
        return "unknown"
    return proc.stdout.strip() or "unknown"
