"""One video through the pipeline, chunk by chunk, resumable after a crash at any point.

Every ``chunk_frames`` frames, the tracked boxes of the chunk, the sightings of the tracks that
ended in it (their best crops, embedded) and the pipeline's own state (tracker, pending crops)
are written in ONE transaction (``repo.commit_chunk``). A run killed at any moment therefore
leaves the store exactly at a chunk boundary, and the next run loads that state and carries on
from the next frame: the result is the same as an uninterrupted run, with nothing lost and
nothing twice. The FAISS index is brought in line with SQL afterwards (``sync_index``): SQL is
the source of truth.
"""

from __future__ import annotations

import os
import pickle
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from indexer.ingest.sources import Source
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from indexer.store.schemas import SightingCreate
from reid.detect import create_detector, detector_class, detector_options
from reid.detections import Detections
from reid.embed import OnnxEmbedder
from reid.errors import ReidTraceError
from reid.track import DeepSortTracker, histogram_features
from reid.track.selection import BestCrops
from reid.video import VideoInfo, probe, read_frames

STATE_VERSION = 1
STAGES = ("decode", "detect", "track", "embed", "store")


@dataclass(frozen=True)
class IngestConfig:
    """How footage is turned into rows; the same config gives the same rows."""

    detector: str = "nanodet"
    detector_options: dict[str, Any] = field(default_factory=dict)
    embedder_path: str | None = None  # default: the bundled ReID model
    appearance: str = "histogram"  # association cue: "histogram" or "reid"
    detect_stride: int = 1  # detect every Nth frame (1 = every frame)
    chunk_frames: int = 50
    crops_per_track: int = 5
    min_track_frames: int = 3  # shorter tracks are dropped as noise
    max_age: int = 30
    n_init: int = 3
    # appearance gate of the histogram cue (cosine distance); 0.3 (deep-sort-realtime's default)
    # let a track take a partner's box at PETS' couple; 0.2 raised IDF1 on two worlds with NanoDet
    # (0.591 -> 0.612, 0.588 -> 0.590) and with the oracle (0.928 -> 0.932, 0.875 -> 0.894)
    max_cosine_distance: float = 0.2
    # two-stage association: the detector reports boxes down to ``low_score``; those under its
    # own threshold may only continue tracks (reid.track.deepsort); None = one stage
    low_score: float | None = 0.15
    # also track foot points on the ground where the camera has a homography (reid.track.ground);
    # off by default: on three synthetic worlds it cut ID switches but moved oracle IDF1 by
    # +0.011 / -0.031 / -0.007 (docs/tracking.md)
    ground_cue: bool = False
    # tracks bridge up to this many frames without a detector box (frames skipped by
    # ``detect_stride`` included) with interpolated boxes of confidence 0 (reid.track.deepsort)
    max_gap: int = 10
    # a box more than this fraction covered by another box adds no appearance to its track's
    # gallery (reid.track.gallery; 1.0 = off): IDF1 up on four worlds with NanoDet (mean +0.02)
    # and with the oracle (docs/tracking.md, session 5)
    overlap_cover: float = 0.5
    threads: int | None = None  # ONNX Runtime threads per process

    def validate(self) -> IngestConfig:
        if self.appearance not in ("histogram", "reid"):
            raise ReidTraceError(
                f"appearance must be 'histogram' or 'reid', got {self.appearance!r}",
                hint="histogram is faster; reid uses the ReID model for association",
            )
        if self.low_score is not None and not 0.0 <= self.low_score < 1.0:
            raise ReidTraceError(
                f"low_score must be in [0, 1), got {self.low_score}",
                hint="0.15 (the default) or leave it unset for one-stage association",
            )
        if isinstance(self.max_gap, bool) or not isinstance(self.max_gap, int) or self.max_gap < 0:
            raise ReidTraceError(
                f"max_gap must be a whole number of frames >= 0, got {self.max_gap!r}",
                hint="0 = no interpolated boxes; the default 10 bridges a second at 10 fps",
            )
        if not 0.0 <= self.overlap_cover <= 1.0:
            raise ReidTraceError(
                f"overlap_cover must be in [0, 1], got {self.overlap_cover}",
                hint="0.5 (the default): boxes more than half covered add no appearance; 1 = off",
            )
        if self.detect_stride < 1 or self.chunk_frames < 1 or self.crops_per_track < 1:
            raise ReidTraceError(
                "detect_stride, chunk_frames and crops_per_track must be >= 1",
                hint="defaults: 1, 50, 5",
            )
        return self

    def check_detector(self) -> None:
        """Build the detector once, before a run: a missing model or a bad option then stops
        the run with one error instead of failing every video the same way. (Not part of
        ``validate``, which runs per video; the oracle's truth file differs per video.)"""
        if self.detector != "oracle":
            create_detector(self.detector, **self.detector_options)


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


@dataclass
class _State:
    """What the pipeline holds in memory between frames; pickled into each chunk commit."""

    version: int
    tracker: DeepSortTracker
    crops: BestCrops
    last_seen: dict[int, int]  # track_no -> last frame it was matched
    track_frames: dict[int, int]  # track_no -> boxes seen so far


class _Components:
    """Detector, embedder and timing, built once per process and reused for every video."""

    def __init__(self, cfg: IngestConfig, source: Source) -> None:
        opts = dict(cfg.detector_options)
        if cfg.detector == "oracle" and "gt_path" not in opts:
            if source.gt_path is None:
                raise ReidTraceError(
                    f"the oracle detector needs ground truth, and {source.path} has none",
                    hint="ingest a synthetic world folder (with cameras.json), or another detector",
                )
            opts["gt_path"] = source.gt_path
        # the worker's share of the cores: a pool of N workers on N cores each ran the detector
        # with every core's thread, and the workers' threads fought (30-40 against 28 ms/frame)
        cores = cfg.threads or os.cpu_count() or 1
        self.pool: ThreadPoolExecutor | None = None
        self.pool_threads = 0
        takes_threads = "threads" in detector_options(cfg.detector)
        thread_safe = getattr(detector_class(cfg.detector), "thread_safe", False)
        if cores > 1 and takes_threads and "threads" not in opts and thread_safe:
            # frames in parallel, one thread each, beat one frame on every core's thread: NanoDet
            # INT8 on 2 cores 11.7 against 15.6 ms/frame (benchmarks/ingest.md, session 5)
            opts["threads"] = 1
            self.pool_threads = cores
            self.pool = ThreadPoolExecutor(cores, thread_name_prefix="detect")
        elif cfg.threads and takes_threads and "threads" not in opts:
            opts["threads"] = cfg.threads
        self.detector = create_detector(cfg.detector, **opts)
        # the detector's own threshold becomes the tracker's bar for its first stage, and the
        # detector is asked for weaker boxes too (only ONNX detectors have a score threshold)
        self.high_score = 0.0
        threshold = getattr(self.detector, "score_threshold", None)
        if cfg.low_score is not None and threshold is not None and cfg.low_score < threshold:
            self.high_score = float(threshold)
            self.detector.score_threshold = cfg.low_score
        self.embedder = _embedder(cfg)
        self.times = dict.fromkeys(STAGES, 0.0)


def _detected(
    frames: Iterator[tuple[int, np.ndarray]], parts: _Components, stride: int
) -> Iterator[tuple[int, np.ndarray, Detections | None]]:
    """``(frame_idx, frame, detections)`` in frame order; ``None`` on frames the stride skips.

    With a thread pool (``parts.pool``) up to two frames per thread are detected ahead while the
    caller tracks, embeds and stores; the results and their order are the same as one at a time.
    ``times`` get the caller's waits: decoding, and detection where it was not done yet.
    """
    times = parts.times
    ahead: deque[tuple[int, np.ndarray, Future[Detections] | Detections | None]] = deque()
    while True:
        while len(ahead) <= 2 * parts.pool_threads:
            t0 = time.perf_counter()
            nxt = next(frames, None)
            times["decode"] += time.perf_counter() - t0
            if nxt is None:
                break
            idx, frame = nxt
            todo: Future[Detections] | Detections | None = None
            if idx % stride == 0 and parts.pool is not None:
                todo = parts.pool.submit(parts.detector.detect, frame, idx)
            elif idx % stride == 0:
                t0 = time.perf_counter()
                todo = parts.detector.detect(frame, idx)
                times["detect"] += time.perf_counter() - t0
            ahead.append((idx, frame, todo))
        if not ahead:
            return
        idx, frame, todo = ahead.popleft()
        if isinstance(todo, Future):
            t0 = time.perf_counter()
            todo = todo.result()
            times["detect"] += time.perf_counter() - t0
        yield idx, frame, todo


_EMBEDDERS: dict[tuple, OnnxEmbedder] = {}


def _embedder(cfg: IngestConfig) -> OnnxEmbedder:
    key = (cfg.embedder_path, cfg.threads)
    if key not in _EMBEDDERS:
        from reid.embed import default_model

        path = cfg.embedder_path or default_model()
        _EMBEDDERS[key] = OnnxEmbedder(path, threads=cfg.threads)
    return _EMBEDDERS[key]


def _new_state(
    cfg: IngestConfig,
    high_score: float,
    source: Source | None = None,
    info: VideoInfo | None = None,
) -> _State:
    """A fresh tracker; with the camera's ground homography it also tracks on the ground."""
    ground: dict[str, Any] = {}
    has_ground = source is not None and source.homography is not None
    if cfg.ground_cue and has_ground and info is not None and info.fps > 0:
        ground = {"homography": source.homography, "image_height": info.height, "fps": info.fps}
    return _State(
        version=STATE_VERSION,
        tracker=DeepSortTracker(
            max_age=cfg.max_age,
            n_init=cfg.n_init,
            max_cosine_distance=cfg.max_cosine_distance,
            high_score=high_score,
            # a stride of N leaves N - 1 undetected frames between every two detections
            max_gap=max(cfg.max_gap, cfg.detect_stride - 1),
            overlap_cover=cfg.overlap_cover,
            **ground,
        ),
        crops=BestCrops(k=cfg.crops_per_track, min_gap=5),
        last_seen={},
        track_frames={},
    )


def _thumbnail(crop: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def ingest_video(
    db_url: str,
    source: Source,
    cfg: IngestConfig,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> VideoReport:
    """Ingest one video (or frame folder) into the store at ``db_url``; never raises for bad
    footage: a file that cannot be read fails its own report with the reason."""
    t_start = time.perf_counter()
    report = VideoReport(path=str(source.path), camera=source.camera, status="failed")
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    video_id = None
    parts: _Components | None = None
    try:
        cfg.validate()
        info = probe(source.path, fps=source.fps)
        start_time = source.start_time
        if start_time is None:
            start_time = datetime.fromtimestamp(Path(source.path).stat().st_mtime, UTC)
            report.notes.append("start time taken from the file's modification time")
        with sessions() as session:
            camera = repo.get_or_create_camera(
                session=session,
                name=source.camera,
                width=info.width,
                height=info.height,
                fps=info.fps,
                homography=source.homography,
                ground_units="m" if source.homography is not None else None,
            )
            video = repo.find_video_by_hash(
                session=session, camera_id=camera.id, content_hash=info.content_hash
            )
            if video is not None and video.status == "done":
                report.status, report.video_id = "skipped", video.id
                report.notes.append("already ingested (same content hash)")
                return report
            if video is None:
                video = repo.create_video(
                    session=session,
                    camera_id=camera.id,
                    path=str(source.path),
                    content_hash=info.content_hash,
                    start_time=start_time,
                    fps=info.fps,
                    num_frames=info.num_frames,
                    width=info.width,
                    height=info.height,
                    kind="frames" if info.is_frame_folder else "video",
                )
            video_id = report.video_id = video.id
            repo.set_video_status(session=session, video_id=video_id, status="running")
            frames_done, blob = repo.video_checkpoint(session=session, video_id=video_id)
        state = _restore(blob, frames_done, cfg, sessions, video_id)
        report.resumed_from = frames_done if state is not None else 0
        parts = _Components(cfg, source)
        if state is None:
            frames_done, state = 0, _new_state(cfg, parts.high_score, source, info)
        _run(info, state, frames_done, cfg, parts, sessions, video_id, report, progress)
        with sessions() as session:
            repo.set_video_status(session=session, video_id=video_id, status="done")
            report.tracks = len(repo.tracks_for_video(session=session, video_id=video_id))
        report.status = "done"
        report.stages = {k: round(v, 3) for k, v in parts.times.items()}
    except ReidTraceError as err:
        report.error = err.message + (f" ({err.hint})" if err.hint else "")
        _mark_failed(sessions, video_id, report.error)
    except Exception as err:  # a bug or a decoder crash: fail this video, keep the others going
        report.error = f"{type(err).__name__}: {err}"
        _mark_failed(sessions, video_id, report.error)
    finally:
        if parts is not None and parts.pool is not None:
            parts.pool.shutdown(cancel_futures=True)
        report.seconds = round(time.perf_counter() - t_start, 3)
        engine.dispose()
    return report


def _mark_failed(sessions: Any, video_id: int | None, error: str) -> None:
    if video_id is None:
        return
    with sessions() as session:
        repo.set_video_status(session=session, video_id=video_id, status="failed", error=error)


def _restore(
    blob: bytes | None, frames_done: int, cfg: IngestConfig, sessions: Any, video_id: int
) -> _State | None:
    """The state saved with the last chunk, or None to start over (rows after 0 removed)."""
    if frames_done == 0:
        return None
    if blob is not None:
        try:
            state = pickle.loads(blob)
            if isinstance(state, _State) and state.version == STATE_VERSION:
                return state
        except Exception:  # an unreadable checkpoint means: start this video over
            pass
    with sessions() as session:  # no usable state: redo the video from its first frame
        repo.delete_video_rows_after(session=session, video_id=video_id, frame=0)
    return None


def _run(
    info: VideoInfo,
    state: _State,
    start: int,
    cfg: IngestConfig,
    parts: _Components,
    sessions: Any,
    video_id: int,
    report: VideoReport,
    progress: Callable[[str, int, int], None] | None,
) -> None:
    times = parts.times
    pending: list[Detections] = []
    finished: list[SightingCreate] = []
    frame_idx = start - 1
    t = time.perf_counter()
    for frame_idx, frame, dets in _detected(
        read_frames(info, start=start), parts, cfg.detect_stride
    ):
        report.frames += 1
        if dets is not None:
            t0 = time.perf_counter()
            if cfg.appearance == "reid":
                dets.embedding = parts.embedder.embed(frame, dets).embedding
            else:
                dets.embedding = histogram_features(frame, dets)
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
        ended = [no for no, last in state.last_seen.items() if frame_idx - last > cfg.max_age]
        finished += _finish_tracks(ended, state, cfg, parts)
        if (frame_idx + 1) % cfg.chunk_frames == 0:
            _commit(pending, finished, frame_idx + 1, state, sessions, video_id, report, times)
            pending, finished = [], []
        if progress is not None and time.perf_counter() - t > 0.2:
            progress(str(info.path.name), frame_idx + 1, info.num_frames)
            t = time.perf_counter()
    # end of footage: every open track ends here
    finished += _finish_tracks(list(state.last_seen), state, cfg, parts)
    _commit(pending, finished, max(frame_idx + 1, start), state, sessions, video_id, report, times)
    if progress is not None:
        progress(str(info.path.name), frame_idx + 1, max(info.num_frames, frame_idx + 1))


def _finish_tracks(
    ended: list[int], state: _State, cfg: IngestConfig, parts: _Components
) -> list[SightingCreate]:
    """Embed the best crops of tracks that ended; drop tracks too short to be a person."""
    out: list[SightingCreate] = []
    crops_of: list[tuple[int, Any]] = []
    for no in ended:
        state.last_seen.pop(no, None)
        n = state.track_frames.pop(no, 0)
        kept = state.crops.pop(no)
        if n < cfg.min_track_frames:
            continue
        crops_of += [(no, c) for c in kept]
    if not crops_of:
        return out
    t0 = time.perf_counter()
    vectors = parts.embedder.embed_crops([c.image for _, c in crops_of])
    parts.times["embed"] += time.perf_counter() - t0
    for (no, c), v in zip(crops_of, vectors, strict=True):
        out.append(
            SightingCreate(
                track_no=no,
                frame_idx=c.frame_idx,
                vector=v,
                model=parts.embedder.model_id,
                quality=c.score,
                thumbnail=_thumbnail(c.image),
            )
        )
    return out


def _commit(
    pending: list[Detections],
    finished: list[SightingCreate],
    frames_done: int,
    state: _State,
    sessions: Any,
    video_id: int,
    report: VideoReport,
    times: dict[str, float],
) -> None:
    t0 = time.perf_counter()
    dets = Detections.merge(pending) if pending else Detections.empty()
    if dets.track_id is None:
        dets.track_id = np.zeros(len(dets), np.int64)
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    with sessions() as session:
        result = repo.commit_chunk(
            session=session,
            video_id=video_id,
            frames_done=frames_done,
            detections=dets,
            sightings=finished,
            checkpoint=blob,
        )
    report.detections += result.detections_inserted
    report.sightings += len(result.sighting_ids)
    times["store"] += time.perf_counter() - t0
