"""How footage is turned into rows: ``IngestConfig`` (the same config gives the same rows)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from reid.detect import create_detector
from reid.detect.catalog import ResolvedDetector, resolve_detector
from reid.errors import ReidTraceError
from reid.track import TrackerConfig
from reid.track.config import cue_profile, detector_profile

DEFAULT_LOW_SCORE = 0.15  # see IngestConfig.low_score


@dataclass(frozen=True)
class IngestConfig:
    """Ingestion settings; the tracker's own settings (and defaults) are ``tracker``."""

    # "auto": the best detector model installed in ``models_dir`` (reid.detect.catalog), else
    # the bundled NanoDet; every video report names the one used
    detector: str = "auto"
    detector_options: dict[str, Any] = field(default_factory=dict)
    models_dir: str | None = None  # installed detector models (the CLI: <home>/models)
    embedder_path: str | None = None  # default: the bundled ReID model
    appearance: str = "histogram"  # association cue: "histogram" or "reid"
    detect_stride: int = 1  # detect every Nth frame (1 = every frame)
    chunk_frames: int = 50  # frames per committed chunk (a killed run redoes at most this)
    crops_per_track: int = 5  # best crops embedded per track
    min_track_frames: int = 3  # shorter tracks are dropped as noise
    # two-stage association: the detector reports boxes down to ``low_score``; those under its
    # own threshold may only continue tracks (reid.track); None = one stage
    low_score: float | None = DEFAULT_LOW_SCORE
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    threads: int | None = None  # ONNX Runtime threads per process
    # tracking settings the user gave (``from_settings``: CLI, settings): the detector's
    # profile (``reid.track.config.PROFILES``, applied by ``for_detector``) never overrides them
    explicit: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, **settings: Any) -> IngestConfig:
        """A config from flat ``name=value`` settings: the tracker's names (``max_age``,
        ``max_gap``, ...) go to ``tracker``, the others to the config itself."""
        own = {f.name for f in fields(cls)} - {"tracker"}
        unknown = set(settings) - own - TrackerConfig.names()
        if unknown:
            raise ReidTraceError(
                f"unknown ingest setting(s): {', '.join(sorted(unknown))}",
                hint=f"settings: {', '.join(sorted(own | TrackerConfig.names()))}",
            )
        tracker = {k: v for k, v in settings.items() if k in TrackerConfig.names()}
        given = frozenset(tracker) | ({"low_score"} & set(settings))
        return cls(
            **{k: v for k, v in settings.items() if k in own and k != "explicit"},
            tracker=replace(TrackerConfig(), **tracker),
            explicit=given | frozenset(settings.get("explicit", ())),
        )

    def for_detector(self, detector: str) -> tuple[IngestConfig, str]:
        """This config with the tracking profile of ``detector`` (a ``create_detector`` name,
        as ``resolve_detector`` gives it) applied, and one line that says what it set.

        A profile sets only what the user left alone: names in ``explicit``, and any tracking
        setting that differs from its generic default (a config built in code), are kept."""
        family, profile = detector_profile(detector)
        cue = cue_profile(self.appearance)
        profile = {**profile, **cue}
        generic = TrackerConfig()
        changed = {f.name for f in fields(TrackerConfig)
                   if getattr(self.tracker, f.name) != getattr(generic, f.name)}  # fmt: skip
        if self.low_score != DEFAULT_LOW_SCORE:
            changed.add("low_score")
        applied = {k: v for k, v in profile.items() if k not in self.explicit | changed}
        tracker = {k: v for k, v in applied.items() if k != "low_score"}
        own = {"low_score": applied["low_score"]} if "low_score" in applied else {}
        out = replace(self, tracker=replace(self.tracker, **tracker), **own)
        if family is None and not cue:
            return out, f"tracker: defaults (no profile for detector {detector})"
        kept = sorted(set(profile) - set(applied))
        said = ", ".join(f"{k}={v}" for k, v in sorted(applied.items())) or "the defaults"
        what = " + ".join(
            ([f"{family} profile"] if family else []) + ([f"{self.appearance} cue"] if cue else [])
        )
        note = f"tracker: {what} ({said}" + (
            f"; kept as given: {', '.join(kept)})" if kept else ")"
        )
        return out, note

    def validate(self) -> IngestConfig:
        """Raise ``ReidTraceError`` naming the first bad setting; returns self."""
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
        if self.detect_stride < 1 or self.chunk_frames < 1 or self.crops_per_track < 1:
            raise ReidTraceError(
                "detect_stride, chunk_frames and crops_per_track must be >= 1",
                hint="defaults: 1, 50, 5",
            )
        self.tracker.validate()
        return self

    def check_detector(self) -> None:
        """Build the detector once, before a run: a missing model or a bad option then stops
        the run with one error instead of failing every video the same way. (Not part of
        ``validate``, which runs per video; the oracle's truth file differs per video.)"""
        if self.detector != "oracle":
            chosen = self.resolve_detector()
            create_detector(chosen.name, **chosen.options)

    def resolve_detector(self, frame_hw: tuple[int, int] | None = None) -> ResolvedDetector:
        """The detector to build for a camera of ``frame_hw`` (``auto`` and model names
        resolved, the input size of a resizable model fitted to the camera)."""
        models = None if self.models_dir is None else Path(self.models_dir)
        return resolve_detector(self.detector, self.detector_options, models, frame_hw)

    def tracker_for_video(self) -> TrackerConfig:
        """The tracker settings for this config: a stride of N leaves N - 1 undetected frames
        between every two detections, which the tracker bridges at least."""
        return replace(self.tracker, max_gap=max(self.tracker.max_gap, self.detect_stride - 1))
