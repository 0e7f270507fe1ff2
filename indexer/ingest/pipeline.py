"""One video through the pipeline, chunk by chunk, resumable after a crash at any point.

Every ``chunk_frames`` frames, the tracked boxes of the chunk, the sightings of the tracks that
ended in it (their best crops, embedded) and the pipeline's own state (tracker, pending crops;
``indexer.ingest.checkpoint``) are written in ONE transaction (``Store.write_chunk``). A run
killed at any moment therefore leaves the store exactly at a chunk boundary, and the next run
loads that state and carries on from the next frame: the result is the same as an
uninterrupted run, with nothing lost and nothing twice. The FAISS index is brought in line with
SQL afterwards (``sync_index``): SQL is the source of truth.

The pipeline writes only through the ``Store`` protocol (open a video, write a chunk with its
checkpoint, restart a video, close it) and holds its detector, tracker and embedder only
through their protocols (``indexer.ingest.stages``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from indexer.ingest import checkpoint
from indexer.ingest.checkpoint import PipelineState, StateRejected
from indexer.ingest.config import IngestConfig
from indexer.ingest.sources import Source
from indexer.ingest.stages import Stages
from indexer.protocols import Store
from indexer.store.schemas import SightingCreate, VideoSpec
from indexer.store.sql import SqlStore
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.track.selection import BestCrops
from reid.video import VideoInfo, probe, read_frames

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class VideoReport:
    path: str
    camera: str
    status: str  # "done", "skipped" (already ingested), "failed"
    video_id: int | None = None
    frames: int = 0
    detections: int = 0
    tracks: int = 0
    sightings: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def ingest_video(
    store: Store | str,
    source: Source,
    cfg: IngestConfig,
    *,
    progress: Progress | None = None,
) -> VideoReport:
    """Ingest one video (or frame folder) into ``store`` (a ``Store``, or a database URL for
    an ``SqlStore``); never raises for bad footage: a file that cannot be read fails its own
    report with the reason."""
    if isinstance(store, str):
        with SqlStore.from_url(store) as sql:
            return ingest_video(sql, source, cfg, progress=progress)
    t_start = time.perf_counter()
    report = VideoReport(path=str(source.path), camera=source.camera, status="failed")
    stages: Stages | None = None
    try:
        cfg.validate()
        info = probe(source.path, fps=source.fps)
        opened = store.open_video(_spec(source, info, report))
        report.video_id = opened.video_id
        if opened.status == "done":
            report.status = "skipped"
            report.notes.append("already ingested (same content hash)")
            return report
        stages = Stages(cfg, source, (info.height, info.width))
        report.notes += [stages.detector_note, stages.tracker_note]
        cfg = stages.cfg  # with the detector's tracking profile applied
        state = _fresh_state(cfg, stages, source, info)
        start = 0
        if opened.frames_done > 0:
            try:
                if opened.checkpoint is None:
                    raise StateRejected("no saved state")
                checkpoint.decode(opened.checkpoint, state, stages.settings())
                start = report.resumed_from = opened.frames_done
            except StateRejected as why:
                note = f"restarted from frame 0: {why}"
                log.warning("%s: %s", source.path, note)
                report.notes.append(note)
                store.restart_video(opened.video_id)
                state = _fresh_state(cfg, stages, source, info)
        _Run(store, opened.video_id, cfg, stages, state, report, progress).run(info, start)
        report.tracks = store.close_video(opened.video_id, "done")
        report.status = "done"
        report.stages = {k: round(v, 3) for k, v in stages.times.items()}
    except ReidTraceError as err:
        report.error = err.message + (f" ({err.hint})" if err.hint else "")
        _mark_failed(store, report)
    except Exception as err:  # a bug or a decoder crash: fail this video, keep the others going
        report.error = f"{type(err).__name__}: {err}"
        _mark_failed(store, report)
    finally:
        if stages is not None:
            stages.close()
        report.seconds = round(time.perf_counter() - t_start, 3)
    return report


def _spec(source: Source, info: VideoInfo, report: VideoReport) -> VideoSpec:
    start_time = source.start_time
    if start_time is None:
        start_time = datetime.fromtimestamp(Path(source.path).stat().st_mtime, UTC)
        report.notes.append("start time taken from the file's modification time")
    return VideoSpec(
        camera=source.camera,
        width=info.width,
        height=info.height,
        fps=info.fps,
        homography=source.homography,
        ground_units="m" if source.homography is not None else None,
        path=str(source.path),
        content_hash=info.content_hash,
        start_time=start_time,
        num_frames=info.num_frames,
        kind="frames" if info.is_frame_folder else "video",
    )


def _fresh_state(
    cfg: IngestConfig, stages: Stages, source: Source, info: VideoInfo
) -> PipelineState:
    return PipelineState(
        tracker=stages.new_tracker(source, info),
        crops=BestCrops(k=cfg.crops_per_track, min_gap=5),
        last_seen={},
        track_frames={},
    )


def _mark_failed(store: Store, report: VideoReport) -> None:
    if report.video_id is not None and report.error is not None:
        store.close_video(report.video_id, "failed", report.error)


@dataclass
class _Run:
    """The frame loop of one video, from ``start`` to its end."""

    store: Store
    video_id: int
    cfg: IngestConfig
    stages: Stages
    state: PipelineState
    report: VideoReport
    progress: Progress | None

    def run(self, info: VideoInfo, start: int) -> None:
        times, state, cfg = self.stages.times, self.state, self.cfg
        pending: list[Detections] = []
        finished: list[SightingCreate] = []
        frame_idx = start - 1
        t = time.perf_counter()
        for frame_idx, frame, dets in self.stages.detected(read_frames(info, start=start)):
            self.report.frames += 1
            if dets is not None:
                t0 = time.perf_counter()
                dets = self.stages.zones.keep(dets)  # outside the camera's zones: never tracked
                dets.embedding = self.stages.appearance(frame, dets)
                tracked = state.tracker.update(dets)
                now = tracked[tracked.frame_idx == frame_idx]
                for i, (no, box) in enumerate(zip(now.track_id.tolist(), now.xyxy, strict=True)):
                    others = np.delete(now.xyxy, i, axis=0)
                    state.crops.offer(no, frame, frame_idx, box, others)
                    state.last_seen[no] = frame_idx
                for no in tracked.track_id.tolist():
                    state.track_frames[no] = state.track_frames.get(no, 0) + 1
                if len(tracked):
                    pending.append(tracked)
                times["track"] += time.perf_counter() - t0
            max_age = cfg.tracker.max_age
            ended = [no for no, last in state.last_seen.items() if frame_idx - last > max_age]
            finished += self._finish(ended)
            if (frame_idx + 1) % cfg.chunk_frames == 0:
                self._commit(pending, finished, frame_idx + 1)
                pending, finished = [], []
            if self.progress is not None and time.perf_counter() - t > 0.2:
                self.progress(str(info.path.name), frame_idx + 1, info.num_frames)
                t = time.perf_counter()
        # end of footage: every open track ends here
        finished += self._finish(list(state.last_seen))
        self._commit(pending, finished, max(frame_idx + 1, start))
        if self.progress is not None:
            self.progress(str(info.path.name), frame_idx + 1, max(info.num_frames, frame_idx + 1))

    def _finish(self, ended: list[int]) -> list[SightingCreate]:
        """Embed the best crops of tracks that ended; drop tracks too short to be a person."""
        state = self.state
        crops_of = []
        for no in ended:
            state.last_seen.pop(no, None)
            n = state.track_frames.pop(no, 0)
            kept = state.crops.pop(no)
            if n >= self.cfg.min_track_frames:
                crops_of += [(no, c) for c in kept]
        if not crops_of:
            return []
        embedder = self.stages.embedder
        t0 = time.perf_counter()
        vectors = embedder.embed_crops([c.image for _, c in crops_of])
        self.stages.times["embed"] += time.perf_counter() - t0
        return [
            SightingCreate(
                track_no=no,
                frame_idx=c.frame_idx,
                vector=v,
                model=embedder.model_id,
                quality=c.score,
                thumbnail=_thumbnail(c.image),
            )
            for (no, c), v in zip(crops_of, vectors, strict=True)
        ]

    def _commit(
        self, pending: list[Detections], finished: list[SightingCreate], frames_done: int
    ) -> None:
        t0 = time.perf_counter()
        dets = Detections.merge(pending) if pending else Detections.empty()
        if dets.track_id is None:
            dets.track_id = np.zeros(len(dets), np.int64)
        result = self.store.write_chunk(
            self.video_id,
            dets,
            frames_done=frames_done,
            sightings=finished,
            checkpoint=checkpoint.encode(self.state, self.stages.settings()),
        )
        self.report.detections += result.detections_inserted
        self.report.sightings += len(result.sighting_ids)
        self.stages.times["store"] += time.perf_counter() - t0


def _thumbnail(crop: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""
