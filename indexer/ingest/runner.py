"""Ingest many videos: one process per video on this machine, or Ray tasks on a cluster.

Each video is independent and resumable (see ``pipeline``), so the same rows come out whatever
runs it: in-process, a process pool, or Ray. The parent process owns the FAISS index: it heals
the index from SQL before starting (a previous run may have died between a commit and the index
write) and syncs it once all videos are done. Every vector is stored under the id of the model
that made it, and a database that holds another model's vectors is refused before anything is
written (``indexer.index.check_store_model``: one store, one model).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from indexer.index import sync_index
from indexer.index.location import IndexLocation, as_location
from indexer.ingest.config import IngestConfig
from indexer.ingest.pipeline import VideoReport, ingest_video
from indexer.ingest.sources import Source, discover_sources
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from indexer.store.migrate import upgrade
from reid.embed import default_model, model_identity
from reid.errors import ReidTraceError
from reid.zones import Zones


@dataclass
class IngestReport:
    videos: list[VideoReport] = field(default_factory=list)
    index: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v.status in ("done", "skipped") for v in self.videos)

    def as_dict(self) -> dict:
        done = [v for v in self.videos if v.status == "done"]
        frames = sum(v.frames for v in done)
        seconds = sum(v.seconds for v in done)
        return {
            "ok": self.ok,
            "videos": [asdict(v) for v in self.videos],
            "totals": {
                "videos": len(self.videos),
                "done": len(done),
                "skipped": sum(v.status == "skipped" for v in self.videos),
                "failed": sum(v.status == "failed" for v in self.videos),
                "frames": frames,
                "detections": sum(v.detections for v in self.videos),
                "sightings": sum(v.sightings for v in self.videos),
                "seconds": round(seconds, 2),
            },
            "index": self.index,
        }


def _sync(db_url: str, index_path: IndexLocation, settings: IndexSettings, model_id: str) -> dict:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            # nothing to index (and no other model's vectors to refuse); an index file left from
            # another database or model is rebuilt by the first sync that has sightings
            if not len(repo.sighting_ids(session=session)):
                return {"count": 0, "note": "no sightings yet"}
        return sync_index(engine, index_path, settings, model_id).model_dump()
    finally:
        engine.dispose()


def _one(args: tuple) -> VideoReport:
    db_url, source, cfg = args
    import cv2

    cv2.setNumThreads(1)
    return ingest_video(db_url, source, cfg)


def ingest(
    paths: list[str | Path],
    *,
    db_url: str,
    index_path: str | Path,
    index_settings: IndexSettings,
    cfg: IngestConfig,
    camera: str | None = None,
    start: str | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    market_split: str | None = None,
    zones: Zones | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    fps: float | None = None,
) -> IngestReport:
    """Ingest ``paths`` into the store and index; a bad video fails alone (see the report).

    With ``market_split`` ("gallery", "query", "train" or "all") the paths are Market-1501-format
    folders of crops instead of footage (see ``indexer.ingest.market``). ``zones`` (the CLI's
    ``--zone``) replace every source's own zones (``reid.zones``); ``fps`` is the frame rate of
    frame-image folders (``discover_sources``).
    """
    cfg.validate()
    model_id = model_identity(cfg.embedder_path or default_model())
    if not market_split:
        cfg.check_detector()
    if workers < 1:
        raise ReidTraceError(f"workers must be >= 1, got {workers}", hint="try --workers 2")
    sources = (
        []
        if market_split
        else discover_sources(paths, camera=camera, start=start, zones=zones, fps=fps)
    )
    index_path = as_location(index_path)  # a FAISS file, or a vector database URL
    if isinstance(index_path, Path):
        index_path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(db_url)
    # refuses a database of another model before anything is written; heals a previous crash
    _sync(db_url, index_path, index_settings, model_id)
    report = IngestReport()
    if market_split:
        from indexer.ingest.market import ingest_market

        for p in paths:
            report.videos += ingest_market(db_url, p, cfg, split=market_split)
    elif ray_address is not None:
        report.videos = _run_ray(db_url, sources, cfg, ray_address, progress)
    elif workers == 1 or len(sources) == 1:
        for i, s in enumerate(sources):
            report.videos.append(ingest_video(db_url, s, cfg, progress=progress))
            if progress:
                progress("videos", i + 1, len(sources))
    else:
        report.videos = _run_pool(db_url, sources, cfg, workers, progress)
    report.index = _sync(db_url, index_path, index_settings, model_id)
    return report


def _run_pool(
    db_url: str, sources: list[Source], cfg: IngestConfig, workers: int, progress: Callable | None
) -> list[VideoReport]:
    import multiprocessing as mp

    # Each worker gets an equal share of the cores for ONNX Runtime, so they do not fight.
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // workers)
    cfg_w = replace(cfg, threads=threads)
    out: dict[int, VideoReport] = {}
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(_one, (db_url, s, cfg_w)): i for i, s in enumerate(sources)}
        for done, fut in enumerate(as_completed(futs), 1):
            out[futs[fut]] = fut.result()
            if progress:
                progress("videos", done, len(sources))
    return [out[i] for i in range(len(sources))]


def _run_ray(
    db_url: str, sources: list[Source], cfg: IngestConfig, address: str, progress: Callable | None
) -> list[VideoReport]:
    try:
        import ray
    except ImportError as err:
        raise ReidTraceError(
            "Ray is not installed", hint='pip install "reidtrace[dist]" (or use --workers N)'
        ) from err
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "auto-local" else address,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        except Exception as err:  # connection refused, bad address
            raise ReidTraceError(
                f"cannot connect to the Ray cluster at {address!r}: {err}",
                hint="start one with `ray start --head`, or use --ray auto for a local one",
            ) from err
    # one core per task, as Ray schedules it: without this each task's detector took every
    # core of its node (a thread pool or ONNX Runtime's own threads) beside the node's other tasks
    task = ray.remote(num_cpus=1)(_one)
    cfg_r = replace(cfg, threads=cfg.threads or 1)
    refs = [task.remote((db_url, s, cfg_r)) for s in sources]
    out = []
    for i, ref in enumerate(refs):
        out.append(ray.get(ref))
        if progress:
            progress("videos", i + 1, len(sources))
    return out
