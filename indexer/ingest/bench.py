"""``reidtrace bench ingest``: ingestion speed on the synthetic world and on real footage.

Reports frames/s, x real time (frames/s over the footage's own frame rate) and the share of
time per stage (decode, detect, track, embed, store). Target: >= 5x real time for 480x360 at
10 fps with every frame detected, on 2 cores.

Three measurements: ``synthetic`` and ``pets`` time one video at a time in this process (the
busy seconds of the pipeline: one stream's speed, every core detecting frames ahead in threads
while the main thread tracks, embeds and stores); ``archive`` ingests the synthetic world's
videos the way ``reidtrace ingest`` does a folder, with a process pool of one worker per core,
and divides the footage by the wall-clock seconds, start-up and index sync included (what an
archive costs).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from indexer.ingest.config import IngestConfig
from indexer.ingest.pipeline import VideoReport, ingest_video
from indexer.ingest.runner import ingest
from indexer.ingest.sources import Source, discover_sources
from indexer.ingest.stages import STAGES
from indexer.settings import IndexSettings
from indexer.store.db import make_engine
from indexer.store.migrate import upgrade
from reid.errors import ReidTraceError
from reid.synth.world import WorldConfig, generate_world

PETS = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "pets2009_s2l1_view001_480x360.avi"
)
TARGET_X_REALTIME = 5.0


def _result(
    frames: int,
    seconds: float,
    stages: dict[str, float],
    fps_video: float,
    cfg: IngestConfig,
    reports: list[VideoReport],
) -> dict:
    """The report of one measurement: ``seconds`` is busy time or wall clock, as measured;
    ``detectors_used`` are the videos' own notes (``auto`` resolves per camera)."""
    fps = frames / max(seconds, 1e-9)
    busy = max(sum(stages.values()), 1e-9)
    return {
        "frames": frames,
        "seconds": round(seconds, 2),
        "fps": round(fps, 1),
        "x_realtime": round(fps / fps_video, 2),
        "stages": {k: round(v / busy, 3) for k, v in stages.items()},
        "meets_target": fps / fps_video >= TARGET_X_REALTIME,
        "detector": cfg.detector,
        "detectors_used": sorted({n for r in reports for n in r.notes if n.startswith("detector")}),
        "detect_stride": cfg.detect_stride,
    }


def _bench_sources(sources: list[Source], cfg: IngestConfig, db_url: str) -> dict:
    """One video at a time in this process; the pipeline's busy seconds."""
    frames = 0
    stages = dict.fromkeys(STAGES, 0.0)
    reports = []
    for s in sources:
        r = ingest_video(db_url, s, cfg)
        if r.status != "done":
            return {"error": r.error}
        reports.append(r)
        frames += r.frames
        for k, v in r.stages.items():
            stages[k] += v
    return _result(frames, sum(stages.values()), stages, sources[0].fps or 10.0, cfg, reports)


def _bench_archive(
    world: Path, fps_video: float, cfg: IngestConfig, db_url: str, index: Path, workers: int
) -> dict:
    """The world folder through the process pool, as `reidtrace ingest` runs it; wall clock."""
    t0 = time.perf_counter()
    report = ingest(
        [world],
        db_url=db_url,
        index_path=index,
        index_settings=IndexSettings(),
        cfg=cfg,
        workers=workers,
    )
    wall = time.perf_counter() - t0
    bad = [v.error for v in report.videos if v.status != "done"]
    if bad:
        return {"error": bad[0]}
    stages = {k: sum(v.stages.get(k, 0.0) for v in report.videos) for k in STAGES}
    frames = sum(v.frames for v in report.videos)
    out = _result(frames, wall, stages, fps_video, cfg, report.videos)
    return {**out, "videos": len(report.videos), "workers": workers}


def bench_ingest(
    *,
    detector: str = "auto",
    models_dir: Path | None = None,
    stride: int = 1,
    model: str | None = None,
    world_config: WorldConfig | None = None,
    pets: Path | None = PETS,
    workers: int | None = None,
    appearance: str = "histogram",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Time ingestion of the demo world's videos, one at a time and as an archive with a pool of
    ``workers`` processes (default: one per core), and (when present) the real PETS clip.
    ``detector`` "auto" times the best model installed in ``models_dir``; ``appearance`` the
    tracking cue (``reid`` and ``fused`` embed every box, so they cost more than ``histogram``)."""
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ReidTraceError(f"workers must be >= 1, got {workers}", hint="try --workers 2")
    cfg = IngestConfig(
        detector=detector,
        models_dir=None if models_dir is None else str(models_dir),
        detect_stride=stride,
        embedder_path=model,
        appearance=appearance,
    ).validate()
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="reidtrace-bench-ingest-") as tmp:
        world = Path(tmp) / "world"
        generate_world(world, world_config or WorldConfig(seed=7), progress=progress)
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(make_engine(db_url))
        sources = discover_sources([world])
        out["synthetic"] = _bench_sources(sources, cfg, db_url)
        pool_db = f"sqlite:///{Path(tmp) / 'archive.db'}"
        upgrade(make_engine(pool_db))
        fps_video = sources[0].fps or 10.0
        index = Path(tmp) / "archive.faiss"
        out["archive"] = _bench_archive(world, fps_video, cfg, pool_db, index, workers)
        if pets is not None and pets.is_file():
            src = Source(pets, "pets_view001", None)
            out["pets"] = _bench_sources([src], cfg, db_url)
        else:
            out["pets"] = {"skipped": f"{pets} not found"}
    return out
