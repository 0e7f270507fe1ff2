"""The pixel stages of ingestion, built once per process from their factories.

The pipeline holds a detector, a tracker per video and an embedder only through their
protocols (``reid.protocols``), each made by its factory (``create_detector``,
``create_tracker``, ``create_embedder``), so another implementation plugs in by name.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from indexer.ingest.config import IngestConfig
from indexer.ingest.sources import Source
from reid.detect import create_detector, detector_class, detector_options
from reid.detections import Detections
from reid.embed import create_embedder, default_model
from reid.errors import ReidTraceError
from reid.protocols import Detector, Embedder, Tracker
from reid.track import create_tracker, fuse_cues, histogram_features
from reid.video import VideoInfo

STAGES = ("decode", "detect", "track", "embed", "store")

_EMBEDDERS: dict[tuple, Embedder] = {}


def shared_embedder(cfg: IngestConfig) -> Embedder:
    """The configured embedder, loaded once per process (a session costs ~0.3 s to build)."""
    key = (cfg.embedder_path, cfg.threads)
    if key not in _EMBEDDERS:
        path = cfg.embedder_path or default_model()
        _EMBEDDERS[key] = create_embedder("onnx", path=path, threads=cfg.threads)
    return _EMBEDDERS[key]


class Stages:
    """Detector, embedder and stage timings for one process; ``new_tracker`` per video.

    With more than one core and a thread-safe detector, frames are detected ahead in a thread
    pool, one ONNX thread each: on 2 cores NanoDet INT8 ran 11.7 against 15.6 ms/frame with one
    frame on every core's thread (``benchmarks/ingest.md``). ``close`` stops the pool.
    """

    def __init__(
        self, cfg: IngestConfig, source: Source, frame_hw: tuple[int, int] | None = None
    ) -> None:
        chosen = cfg.resolve_detector(frame_hw)  # ``auto`` -> a model; input size per camera
        # the tracking profile of the detector that runs (user-given settings win); ``cfg``
        # is the effective config from here on (checkpoint header, report, pipeline)
        cfg, self.tracker_note = cfg.for_detector(chosen.name)
        self.cfg = cfg
        self.detector_note = chosen.note
        name, opts = chosen.name, chosen.options
        # what a saved state depends on: the model and its options (not the thread count)
        self._detector_key = repr([name, sorted((k, str(v)) for k, v in opts.items())])
        if name == "oracle" and "gt_path" not in opts:
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
        takes_threads = "threads" in detector_options(name)
        thread_safe = getattr(detector_class(name), "thread_safe", False)
        if cores > 1 and takes_threads and "threads" not in opts and thread_safe:
            opts["threads"] = 1
            self.pool_threads = cores
            self.pool = ThreadPoolExecutor(cores, thread_name_prefix="detect")
        elif cfg.threads and takes_threads and "threads" not in opts:
            opts["threads"] = cfg.threads
        self.detector: Detector = create_detector(name, **opts)
        # the detector's own threshold becomes the tracker's bar for its first stage, and the
        # detector is asked for weaker boxes too (only ONNX detectors have a score threshold)
        self.high_score = 0.0
        threshold = getattr(self.detector, "score_threshold", None)
        if cfg.low_score is not None and threshold is not None and cfg.low_score < threshold:
            self.high_score = float(threshold)
            self.detector.score_threshold = cfg.low_score  # type: ignore[attr-defined]
        self.embedder: Embedder = shared_embedder(cfg)
        self.zones = source.zones  # boxes outside the camera's zones never reach the tracker
        self.times = dict.fromkeys(STAGES, 0.0)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def new_tracker(self, source: Source, info: VideoInfo) -> Tracker:
        """A fresh tracker for one video; with the ground cue on and the camera's homography
        it also tracks foot points on the ground."""
        ground: dict[str, Any] = {}
        if self.cfg.tracker.ground_cue and source.homography is not None and info.fps > 0:
            ground = {"homography": source.homography, "image_height": info.height, "fps": info.fps}
        return create_tracker(
            "deepsort", config=self.cfg.tracker_for_video(), high_score=self.high_score, **ground
        )

    def settings(self) -> dict[str, Any]:
        """What a saved state depends on (``indexer.ingest.checkpoint``): resuming a video with
        other tracker settings or another appearance cue would mix two trackers' rows."""
        out = {
            "detector": self._detector_key,
            "tracker": self.cfg.tracker_for_video().fingerprint(),
            "high_score": self.high_score,
            "appearance": self.cfg.appearance,
            "crops_per_track": self.cfg.crops_per_track,
        }
        return out | ({"zones": self.zones.as_json()} if self.zones else {})

    def appearance(self, frame: np.ndarray, dets: Detections) -> np.ndarray:
        """The association cue of each box: a colour histogram, the ReID embedding, or both
        fused into one vector (``reid.track.appearance.fuse_cues``)."""
        if self.cfg.appearance == "reid":
            return self.embedder.embed(frame, dets).embedding
        if self.cfg.appearance == "fused":
            reid = self.embedder.embed(frame, dets).embedding
            return fuse_cues(histogram_features(frame, dets), reid)
        return histogram_features(frame, dets)

    def detected(
        self, frames: Iterator[tuple[int, np.ndarray]]
    ) -> Iterator[tuple[int, np.ndarray, Detections | None]]:
        """``(frame_idx, frame, detections)`` in frame order; ``None`` on frames the stride
        skips. With a pool, up to two frames per thread are detected ahead while the caller
        tracks, embeds and stores; results and order are the same as one at a time."""
        stride = self.cfg.detect_stride
        times = self.times
        ahead: deque[tuple[int, np.ndarray, Future[Detections] | Detections | None]] = deque()
        while True:
            while len(ahead) <= 2 * self.pool_threads:
                t0 = time.perf_counter()
                nxt = next(frames, None)
                times["decode"] += time.perf_counter() - t0
                if nxt is None:
                    break
                idx, frame = nxt
                todo: Future[Detections] | Detections | None = None
                if idx % stride == 0 and self.pool is not None:
                    todo = self.pool.submit(self.detector.detect, frame, idx)
                elif idx % stride == 0:
                    t0 = time.perf_counter()
                    todo = self.detector.detect(frame, idx)
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
