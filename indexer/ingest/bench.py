"""``reidtrace bench ingest``: ingestion speed on the synthetic world and on real footage.

Reports frames/s, x real time (frames/s over the footage's own frame rate) and the share of
time per stage (decode, detect, track, embed, store). Target: >= 5x real time for 480x360 at
10 fps with every frame detected, on 2 cores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from indexer.ingest.pipeline import STAGES, IngestConfig, ingest_video
from indexer.ingest.sources import Source, discover_sources
from indexer.store.db import make_engine
from indexer.store.migrate import upgrade
from reid.synth.world import WorldConfig, generate_world

PETS = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "pets2009_s2l1_view001_480x360.avi"
)
TARGET_X_REALTIME = 5.0


def _bench_sources(sources: list[Source], cfg: IngestConfig, db_url: str) -> dict:
    frames = 0
    seconds = 0.0
    stages = dict.fromkeys(STAGES, 0.0)
    fps_video = None
    for s in sources:
        r = ingest_video(db_url, s, cfg)
        if r.status != "done":
            return {"error": r.error}
        frames += r.frames
        busy = sum(r.stages.values())
        seconds += busy
        for k, v in r.stages.items():
            stages[k] += v
        fps_video = fps_video or s.fps or 10.0
    fps = frames / max(seconds, 1e-9)
    return {
        "frames": frames,
        "seconds": round(seconds, 2),
        "fps": round(fps, 1),
        "x_realtime": round(fps / (fps_video or 10.0), 2),
        "stages": {k: round(v / max(seconds, 1e-9), 3) for k, v in stages.items()},
        "meets_target": fps / (fps_video or 10.0) >= TARGET_X_REALTIME,
        "detector": cfg.detector,
        "detect_stride": cfg.detect_stride,
    }


def bench_ingest(
    *,
    detector: str = "nanodet",
    stride: int = 1,
    model: str | None = None,
    world_config: WorldConfig | None = None,
    pets: Path | None = PETS,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Time ingestion of the demo world's videos and (when present) the real PETS clip."""
    cfg = IngestConfig(detector=detector, detect_stride=stride, embedder_path=model)
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="reidtrace-bench-ingest-") as tmp:
        world = Path(tmp) / "world"
        generate_world(world, world_config or WorldConfig(seed=7), progress=progress)
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(make_engine(db_url))
        out["synthetic"] = _bench_sources(discover_sources([world]), cfg, db_url)
        if pets is not None and pets.is_file():
            src = Source(pets, "pets_view001", None)
            out["pets"] = _bench_sources([src], cfg, db_url)
        else:
            out["pets"] = {"skipped": f"{pets} not found"}
    return out
