"""``reidtrace ingest --market DIR``: a Market-1501-format folder of crops as a gallery.

There is no video: each (camera, sequence) of the folder becomes a "crops" video of its camera,
each crop one single-detection track with one sighting (the crop is its own thumbnail). Camera,
sequence and frame come from the file names; times are nominal (sequence start + frame / fps,
with the 25 fps of the Market-1501 recordings by default), and there are no positions: contacts
in such a gallery can only be co-appearances in one camera within a time window, which the
stored video kind ("crops") tells the query engine.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from indexer.ingest.config import IngestConfig
from indexer.ingest.pipeline import VideoReport
from indexer.ingest.stages import shared_embedder
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from indexer.store.schemas import SightingCreate
from reid.data.market import MarketImage, read_market
from reid.detections import Detections
from reid.errors import ReidTraceError

MARKET_FPS = 25.0
NOMINAL_START = datetime(2000, 1, 1, tzinfo=UTC)
SPLITS = {
    "gallery": ("gallery",),
    "query": ("query",),
    "train": ("train",),
    "all": ("gallery", "query", "train"),
}


def _sequence_hash(images: list[MarketImage]) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(im.path.name.encode())
        h.update(im.path.read_bytes())
    return h.hexdigest()


def ingest_market(
    db_url: str,
    folder: str | Path,
    cfg: IngestConfig,
    *,
    split: str = "gallery",
    fps: float = MARKET_FPS,
    batch: int = 256,
) -> list[VideoReport]:
    """Index the crops of ``split`` (gallery, query, train or all); junk (-1) is left out."""
    if split not in SPLITS:
        raise ReidTraceError(f"unknown split {split!r}", hint=f"choose one of {', '.join(SPLITS)}")
    data = read_market(folder, require_train=split in ("train", "all"))
    name = Path(data.root).name
    images = [im for s in SPLITS[split] for im in getattr(data, s) if im.pid != -1]
    groups: dict[tuple[int, int], list[MarketImage]] = defaultdict(list)
    for im in images:
        groups[(im.camid, im.seq)].append(im)
    embedder = shared_embedder(cfg)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    reports = []
    try:
        for (camid, seq), ims in sorted(groups.items()):
            ims.sort(key=lambda m: (m.frame, m.box, m.path.name))
            reports.append(
                _one_sequence(sessions, name, camid, seq, ims, cfg, embedder, fps, batch)
            )
    finally:
        engine.dispose()
    return reports


def _one_sequence(sessions, name, camid, seq, ims, cfg, embedder, fps, batch) -> VideoReport:
    camera = f"{name}-c{camid}"
    report = VideoReport(path=f"{name}/c{camid}s{seq}", camera=camera, status="failed")
    try:
        first = cv2.imread(str(ims[0].path))
        if first is None:
            raise ReidTraceError(f"cannot read {ims[0].path}", hint="is it an image?")
        h, w = first.shape[:2]
        digest = _sequence_hash(ims)
        with sessions() as session:
            cam = repo.get_or_create_camera(
                session=session, name=camera, width=w, height=h, fps=fps
            )
            video = repo.find_video_by_hash(session=session, camera_id=cam.id, content_hash=digest)
            if video is not None and video.status == "done":
                report.status, report.video_id = "skipped", video.id
                return report
            if video is None:
                video = repo.create_video(
                    session=session,
                    camera_id=cam.id,
                    path=report.path,
                    content_hash=digest,
                    start_time=NOMINAL_START + timedelta(days=seq - 1),
                    fps=fps,
                    num_frames=max(m.frame for m in ims) + 1,
                    width=w,
                    height=h,
                    kind="crops",
                )
            report.video_id = video.id
            repo.set_video_status(session=session, video_id=video.id, status="running")
        for lo in range(0, len(ims), batch):
            part = ims[lo : lo + batch]
            crops = []
            for m in part:
                img = cv2.imread(str(m.path))
                if img is None:
                    raise ReidTraceError(f"cannot read {m.path}", hint="the file may be corrupt")
                crops.append(img)
            vectors = embedder.embed_crops(crops)
            nos = np.arange(lo + 1, lo + len(part) + 1)  # one track per crop
            dets = Detections(
                xyxy=np.array([[0, 0, c.shape[1], c.shape[0]] for c in crops], np.float32),
                confidence=np.ones(len(part)),
                frame_idx=np.array([m.frame for m in part]),
                track_id=nos,
            )
            sightings = [
                SightingCreate(
                    track_no=int(no),
                    frame_idx=m.frame,
                    vector=v,
                    model=embedder.model_id,
                    quality=1.0,
                    thumbnail=m.path.read_bytes(),
                )
                for no, m, v in zip(nos, part, vectors, strict=True)
            ]
            with sessions() as session:
                result = repo.commit_chunk(
                    session=session,
                    video_id=report.video_id,
                    frames_done=max(m.frame for m in ims) + 1,
                    detections=dets,
                    sightings=sightings,
                )
            report.detections += result.detections_inserted
            report.sightings += len(result.sighting_ids)
            report.frames += len(part)
        with sessions() as session:
            repo.set_video_status(session=session, video_id=report.video_id, status="done")
        report.status = "done"
    except ReidTraceError as err:
        report.error = err.message
        if report.video_id is not None:
            with sessions() as session:
                repo.set_video_status(
                    session=session, video_id=report.video_id, status="failed", error=err.message
                )
    return report
