"""``reidtrace bench tracking``: the current defaults on real and synthetic footage, one table.

Real dev sequences (when ``../shared/data`` is there; skipped with the reason otherwise):
PETS 2009 S2.L1 frames 1-397 scored in its annotated area (foot points below y = 100 px of the
480x360 clip: the people beyond the road are not in the truth; a scoring zone only, see
``evaluate_mot``) and TUD-Stadtmitte. Synthetic: two small seeded worlds rendered into a
temporary folder. Each is ingested into a fresh temporary store with ``IngestConfig()`` (or the
given config) and scored like ``reidtrace evaluate-tracking``: MOTA, IDF1, HOTA, switches,
recall, precision. A default that helps the synthetic worlds but hurts the real sequences
loses (issue 21).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from indexer.ingest.config import IngestConfig
from indexer.ingest.evaluate import (
    MotSequence,
    evaluate_mot,
    pool_sequences,
    read_sequence,
    score_world,
)
from indexer.ingest.runner import ingest
from indexer.settings import IndexSettings
from reid.synth.world import WorldConfig, generate_world
from reid.zones import Zones

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PETS_VIDEO = SHARED_DATA / "pets2009_s2l1_view001_480x360.avi"
PETS_SEQ = SHARED_DATA / "mot" / "PETS09-S2L1-first-half"
TUD_SEQ = SHARED_DATA / "mot" / "TUD-Stadtmitte"
PETS_FRAMES = (1, 397)  # the truth covers these frames only
# the annotated area: people whose foot point is above y = 100 px are not in the truth
PETS_ZONES = Zones(exclude=(((-1e4, -1e4), (1e4, -1e4), (1e4, 100.0), (-1e4, 100.0)),))
# two small seeded worlds: 4 cameras x 30 s, few one-camera passers (the reference world of
# tests/metrics/reference.py, so seed 7's row is its [tracking] section), about 70 s each
WORLDS = {
    f"synthetic seed {seed}": WorldConfig(
        seed=seed, cameras=4, identities=32, groups=4, minutes=0.5, test_frac=0.75,
        passer_frac=0.1,
    )
    for seed in (7, 11)
}  # fmt: skip
COLUMNS = ("mota", "idf1", "hota", "id_switches", "recall", "precision", "gt_boxes")


def bench_tracking(
    *,
    cfg: IngestConfig | None = None,
    shared: Path = SHARED_DATA,
    worlds: dict[str, WorldConfig] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, dict]:
    """Score ``cfg`` (default: the shipped defaults) on the real dev sequences and the
    synthetic worlds; one row per sequence or world (``{"skipped": reason}`` when absent)."""
    cfg = cfg or IngestConfig()
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="reidtrace-bench-tracking-") as tmp:
        root = Path(tmp)
        real = {
            "PETS09-S2L1 1-397": (
                shared / PETS_SEQ.relative_to(SHARED_DATA),
                shared / PETS_VIDEO.relative_to(SHARED_DATA),
            ),
            "TUD-Stadtmitte": (shared / TUD_SEQ.relative_to(SHARED_DATA), None),
        }
        for name, (folder, video) in real.items():
            if not (folder / "gt" / "gt.txt").is_file() or (video and not video.is_file()):
                out[name] = {"skipped": f"{folder} or its footage is not there"}
                continue
            seq = read_sequence(folder, video=video)
            pets = video is not None
            out[name] = _score_mot(seq, root / name.replace(" ", "_"), cfg, pets, progress)
        for name, wcfg in (WORLDS if worlds is None else worlds).items():
            out[name] = _score_world(root / name.replace(" ", "_"), wcfg, cfg, progress)
    detector = cfg.resolve_detector().name  # which model ``auto`` chose: part of every row
    return {k: {**v, "detector": detector} if "skipped" not in v else v for k, v in out.items()}


def _score_mot(
    seq: MotSequence, folder: Path, cfg: IngestConfig, pets: bool, progress: Callable | None
) -> dict:
    folder.mkdir()
    res = evaluate_mot(
        [seq],
        db_url=f"sqlite:///{folder / 'store.db'}",
        index_path=folder / "index.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        frames=PETS_FRAMES if pets else None,
        score_zones=PETS_ZONES if pets else None,
        progress=progress,
    )
    return res["pooled"]


def _score_world(folder: Path, wcfg: WorldConfig, cfg: IngestConfig, progress: Callable | None):
    """Render, ingest and score one world, every camera pooled (its own zones apply)."""
    world = folder / "world"
    generate_world(world, wcfg, progress=progress)
    db_url = f"sqlite:///{folder / 'store.db'}"
    report = ingest(
        [world],
        db_url=db_url,
        index_path=folder / "index.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        workers=1,
        progress=progress,
    )
    if not report.ok:
        return {"error": next(v.error for v in report.videos if v.status == "failed")}
    return pool_sequences(score_world(world, db_url=db_url))


def markdown_table(rows: dict[str, dict]) -> str:
    """The rows as a markdown table of ``COLUMNS`` (skipped rows say why)."""
    head = (
        "| sequence | detector | MOTA | IDF1 | HOTA | ID sw. | recall | precision | truth boxes |"
    )
    lines = [head, "| --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " |"]
    for name, r in rows.items():
        if "skipped" in r or "error" in r:
            lines.append(f"| {name} | {r.get('skipped') or r.get('error')} |")
            continue
        cells = [f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS]
        lines.append(f"| {name} | {r.get('detector', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
