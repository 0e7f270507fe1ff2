"""Every setting of the per-camera tracker and its default, in one place.

The tracker (``DeepSortTracker``), ingestion (``IngestConfig.tracker``), the CLI (flags default
to "use the config") and the benchmarks all read these defaults from here; the reason for each
default is given beside it (measurements: ``docs/tracking.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any

from reid.errors import ReidTraceError

CLUTTER_MODES = ("off", "weak", "all")  # see TrackerConfig.clutter


@dataclass(frozen=True)
class TrackerConfig:
    """How boxes are joined into tracks; the same config and boxes give the same tracks."""

    # frames a confirmed track survives without a box (3 s at 10 fps: a person behind a pillar)
    max_age: int = 30
    # consecutive boxes before a track is confirmed (fewer let clutter start tracks)
    n_init: int = 3
    # appearance gate (cosine distance of colour histograms or ReID vectors); 0.3, the DeepSORT
    # default, let a track take a partner's box at PETS' couple; 0.2 raised IDF1 on two
    # synthetic worlds with NanoDet and with the oracle boxes
    max_cosine_distance: float = 0.2
    # IoU stage for new and just-lost tracks: pairs above 1 - IoU = 0.7 are not matched
    max_iou_distance: float = 0.7
    # appearance vectors kept per track (the most recent); None = all
    nn_budget: int | None = 50
    # weak boxes (under the detector's own threshold) continue a lost confirmed track when
    # their IoU with its predicted box is at least this (ByteTrack's second stage)
    second_iou: float = 0.5
    # tracks bridge up to this many frames without a box with interpolated boxes of
    # confidence 0, so trajectories and contact exposure count every frame a person was followed
    max_gap: int = 10
    # a box more than this fraction covered by another box adds no appearance to its track's
    # gallery (1.0 = off): IDF1 up on four synthetic worlds with NanoDet (mean +0.02) and oracle
    overlap_cover: float = 0.5
    # also follow foot points on the ground where the camera has a homography; off: on three
    # synthetic worlds it cut ID switches but moved oracle IDF1 by +0.011 / -0.031 / -0.007
    ground_cue: bool = False
    # ground association (only with ground_cue and a homography): weight of the ground distance
    # in the cost, its gate (chi-square 99 %, 2 dof), the radius (m) within which a box may join
    # a track outside the image gate, and a foot point's error as a fraction of the box height
    ground_weight: float = 0.3
    ground_gate: float = 9.21
    ground_radius: float = 1.5
    pixel_noise: float = 0.05
    # static clutter (reid.track.clutter): learn where boxes stand still, looking the same;
    # boxes there start no track, and "weak": weak boxes there feed only tracks that moved;
    # "all": no box there feeds a track that never moved; "off". "weak" (the default) left
    # both synthetic worlds' scores unchanged and raised PETS frames 1-397 from MOTA / IDF1
    # 0.543 / 0.565 to 0.580 / 0.574 (the cones' boxes over the whole clip 781 -> 273); "all"
    # reached 0.676 / 0.600 (59 cone boxes) but cost the demo world 0.021 MOTA: two people who
    # stand from the first frame look like a mannequin (docs/tracking.md). A box is the same
    # thing seen again at IoU >= clutter_iou (0.6: a sign post's boxes in PETS jitter down to
    # IoU 0.5-0.8) and cosine distance <= clutter_look (the appearance gate's 0.2); a place is
    # scenery after clutter_frames such frames (100, 10 s at 10 fps: with "all", 300 kept 389
    # cone boxes on PETS and still cost the demo world 0.005 MOTA); a track has moved once its
    # box centre left its first box by clutter_move x the box height (half a height: a
    # standing person sways less, a walker covers it in a few frames)
    clutter: str = "weak"
    clutter_frames: int = 100
    clutter_iou: float = 0.6
    clutter_look: float = 0.2
    clutter_move: float = 0.5
    # tracklet stitching (reid.track.deepsort, "Stitching"): when a new track is confirmed,
    # it continues a lost confirmed track that ended before it began (no overlap in time),
    # still inside ``max_age``, whose look is within ``stitch_look`` (cosine distance, mean
    # over the new track's boxes, against the old gallery) and whose last box, or that box
    # carried on at the track's velocity, is within ``stitch_reach`` box heights of the new
    # track's first box, plus ``stitch_speed`` heights per frame of gap (a walker at 10 fps);
    # box heights within a factor ``stitch_shape`` (2: a person's box before they were hidden
    # is often cut by what hid them). Off when False
    stitch: bool = False
    stitch_look: float = 0.3
    stitch_reach: float = 0.5
    stitch_speed: float = 0.1
    stitch_shape: float = 2.0
    # track score: a confirmed track's boxes are emitted only once the mean detector confidence
    # of its boxes so far reaches this (held until then, dropped if it dies first; 0 = off).
    # Tracks that stay weak are mostly scenery or far clutter the detector half believes in
    min_track_score: float = 0.0

    def validate(self) -> TrackerConfig:
        """Raise ``ReidTraceError`` naming the first bad setting; returns self."""
        if _not_count(self.max_age, 1) or _not_count(self.n_init, 1):
            raise ReidTraceError(
                f"tracker needs max_age >= 1 and n_init >= 1, got {self.max_age}, {self.n_init}",
                hint="defaults: max_age=30 frames, n_init=3",
            )
        if not 0 < self.max_cosine_distance <= 2:
            raise ReidTraceError(
                f"max_cosine_distance must be in (0, 2], got {self.max_cosine_distance}",
                hint="the default is 0.2",
            )
        if not 0 < self.max_iou_distance <= 1 or not 0.0 < self.second_iou <= 1.0:
            raise ReidTraceError(
                f"max_iou_distance and second_iou must be in (0, 1], got "
                f"{self.max_iou_distance}, {self.second_iou}",
                hint="defaults: max_iou_distance=0.7, second_iou=0.5",
            )
        if self.nn_budget is not None and _not_count(self.nn_budget, 1):
            raise ReidTraceError(
                f"nn_budget must be a whole number >= 1 or None, got {self.nn_budget!r}",
                hint="the default keeps the 50 most recent appearance vectors per track",
            )
        if _not_count(self.max_gap, 0):
            raise ReidTraceError(
                f"max_gap must be a whole number of frames >= 0, got {self.max_gap!r}",
                hint="0 = no interpolated boxes; the default 10 bridges a second at 10 fps",
            )
        if not 0.0 <= self.overlap_cover <= 1.0:
            raise ReidTraceError(
                f"overlap_cover must be in [0, 1], got {self.overlap_cover}",
                hint="0.5 (the default): boxes more than half covered add no appearance; 1 = off",
            )
        positive = (self.ground_gate, self.ground_radius, self.pixel_noise)
        if min(positive) <= 0 or self.ground_weight < 0:
            raise ReidTraceError(
                f"ground association needs ground_gate, ground_radius and pixel_noise > 0 and "
                f"ground_weight >= 0, got {positive} and {self.ground_weight}",
                hint="defaults: ground_gate=9.21, ground_radius=1.5 m, pixel_noise=0.05, "
                "ground_weight=0.3",
            )
        if self.clutter not in CLUTTER_MODES:
            raise ReidTraceError(
                f"clutter must be one of {', '.join(CLUTTER_MODES)}, got {self.clutter!r}",
                hint="weak (the default), all (also strong boxes of tracks that never moved), off",
            )
        clutter = (self.clutter_frames, self.clutter_iou, self.clutter_look, self.clutter_move)
        bad = [
            name
            for name, ok in zip(
                ("clutter_frames", "clutter_iou", "clutter_look", "clutter_move"),
                (
                    not _not_count(self.clutter_frames, 1),
                    0 < self.clutter_iou <= 1,
                    0 < self.clutter_look <= 2,
                    self.clutter_move > 0,
                ),
                strict=True,
            )
            if not ok
        ]
        if bad:
            raise ReidTraceError(
                f"bad static clutter setting(s) {', '.join(bad)}: got clutter_frames, "
                f"clutter_iou, clutter_look, clutter_move = {clutter}",
                hint="clutter_frames >= 1 (default 100), clutter_iou in (0, 1] (0.6), "
                "clutter_look in (0, 2] (0.2), clutter_move > 0 (0.5)",
            )
        stitching = (self.stitch_look, self.stitch_reach, self.stitch_speed, self.stitch_shape)
        if not (0 < self.stitch_look <= 2 and min(stitching[1:3]) >= 0 and self.stitch_shape >= 1):
            raise ReidTraceError(
                f"bad stitching setting(s): stitch_look, stitch_reach, stitch_speed, "
                f"stitch_shape = {stitching}",
                hint="stitch_look in (0, 2] (default 0.3), stitch_reach >= 0 (0.5 box "
                "heights), stitch_speed >= 0 (0.1 heights a frame), stitch_shape >= 1 (2)",
            )
        if not 0.0 <= self.min_track_score < 1.0:
            raise ReidTraceError(
                f"min_track_score must be in [0, 1), got {self.min_track_score}",
                hint="0 (off) or a mean detector confidence such as 0.4",
            )
        return self

    @classmethod
    def names(cls) -> frozenset[str]:
        """The setting names (to route flat ``KEY=VALUE`` settings to the tracker)."""
        return frozenset(f.name for f in fields(cls))

    def fingerprint(self) -> dict[str, Any]:
        """The settings as plain JSON values (saved with a checkpoint: a resumed video must be
        tracked with the settings it started with)."""
        return asdict(self)


# Per-detector profiles: the settings that differ from the defaults above (and ingestion's
# ``low_score``, 0.15) for one detector family, chosen on PETS, TUD and the synthetic worlds
# together with that detector (docs/tracking.md, "Per-detector profiles"). The key is the start
# of the ``create_detector`` name (``nanodet-int8`` is in the ``nanodet`` family); a detector
# with no row runs the defaults. Settings the user gives (CLI, settings, ``from_settings``)
# always win over a profile.
PROFILES: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        name: MappingProxyType(row)
        for name, row in {
            # PETS 0.603 / 0.580 -> 0.633 / 0.707, TUD 0.644 / 0.623 -> 0.696 / 0.702, seed 7
            # 0.702 / 0.739 -> 0.738 / 0.759, seed 11 0.687 / 0.776 -> 0.713 / 0.767, demo world
            # 0.543 / 0.621 -> 0.549 / 0.620 (MOTA / IDF1)
            "nanodet": {"stitch": True, "low_score": 0.2},
            # PETS 0.814 / 0.690 -> 0.827 / 0.757, TUD 0.807 / 0.794 -> 0.809 / 0.815, seed 7
            # 0.800 / 0.751 -> 0.821 / 0.764, seed 11 0.852 / 0.914 -> 0.855 / 0.923, demo world
            # 0.706 / 0.718 -> 0.701 / 0.722; then min_track_score 0.5: PETS 0.835 / 0.760, TUD
            # the same, seed 7 0.823 / 0.783, seed 11 0.870 / 0.930, demo world 0.718 / 0.730
            "yolox": {"stitch": True, "low_score": 0.2, "n_init": 5, "min_track_score": 0.5},
        }.items()
    }
)


# Per appearance cue: the distances the gates above were tuned on are colour-histogram cosine
# distances; the ReID model's are spread wider (same person <= 2 s apart, truth boxes, the
# INT8 default model: median 0.24 / 90th percentile 0.49 on PETS 1-397, 0.30 / 0.71 on
# TUD-Stadtmitte, against the histogram's 0.07 / 0.17 and 0.06 / 0.22), so gate 0.2 turns away
# most of a person's own boxes. With YOLOX-Nano and ``appearance="reid"`` (the INT8 default),
# PETS / TUD IDF1 at gates (appearance, stitch = +0.1, clutter): 0.3 0.633 / 0.862; 0.325
# 0.784 / 0.864; 0.35 0.785 / 0.864; 0.375 0.785 / 0.863; 0.4 0.775 / 0.810; 0.45 0.782 /
# 0.809; 0.5 0.744 / 0.814 (the FP32 source's profile); 0.6 0.737 / 0.719; the histogram cue
# 0.760 / 0.815. Synthetic seeds 7 / 11 at 0.35: 0.751 / 0.902 (histogram 0.783 / 0.930).
# NanoDet at 0.35 / 0.5: PETS 0.614 / 0.634, TUD 0.768 / 0.770 (histogram 0.707 / 0.702).
# The fused cue (histogram and ReID, reid.track.appearance.fuse_cues) has distances between
# both; with the INT8 default and YOLOX-Nano, gates 0.2 / 0.25 / 0.3 / 0.35 gave PETS IDF1 0.761
# / 0.760 / 0.753 / 0.752 and TUD 0.816 / 0.814 / 0.810 / 0.822 (docs/tracking.md)
CUE_PROFILES: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType(
    {
        "fused": MappingProxyType(
            {"max_cosine_distance": 0.25, "stitch_look": 0.35, "clutter_look": 0.25}
        ),
        "reid": MappingProxyType(
            {"max_cosine_distance": 0.35, "stitch_look": 0.45, "clutter_look": 0.35}
        ),
    }
)


def cue_profile(appearance: str) -> dict[str, Any]:
    """Tracker settings for the ``appearance`` cue (``{}``: the defaults, tuned on histograms)."""
    return dict(CUE_PROFILES.get(appearance, {}))


def detector_profile(detector: str) -> tuple[str | None, dict[str, Any]]:
    """``(family, settings)`` of the profile for a ``create_detector`` name (``None``, ``{}``
    when the detector has no profile: the defaults). ``settings`` are flat: tracker settings and
    ``low_score``."""
    if not isinstance(detector, str):
        raise ReidTraceError(
            f"detector name must be a string, got {detector!r}",
            hint=f"profiles exist for: {', '.join(PROFILES)}",
        )
    key = detector.strip().lower().replace("_", "-")
    for family, row in PROFILES.items():
        if key == family or key.startswith(family + "-"):
            return family, dict(row)
    return None, {}


def _not_count(value: object, low: int) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < low
