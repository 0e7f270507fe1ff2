"""``reidtrace synth``: a seeded multi-camera world rendered to videos with full ground truth.

One call renders every camera (in parallel, one process per camera at a time; each camera is
seeded on its own so the result does not depend on the worker count) and writes, beside the
videos, the truth for every stage with the definitions of ARCHITECTURE.md:

    OUT/cameras.json        resolution, fps, UTC start, homographies (image <-> ground, metres)
    OUT/identities.csv      who is who: role, group, split, twin relation, appearance
    OUT/trajectories.json   per identity, the (camera, enter, leave) visits in time order
    OUT/contacts.csv        co-occurrence contacts from the true ground positions
    OUT/camN/video.mp4      the footage (OpenCV-readable), camN/gt/gt.txt (MOTChallenge)
    OUT/market/             Market-1501 crops: bounding_box_train/, bounding_box_test/, query/

The output is staged and moved into place only when complete (``reid.synth.output``).
"""

from __future__ import annotations

import contextlib
import csv
import os
import queue as queue_mod
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from reid.boxes import xywh_to_xyxy
from reid.contacts import Observations, compute_contacts
from reid.data.market import market_name
from reid.data.mot import write_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.synth.appearance import sample_appearances
from reid.synth.output import (
    pick_query,
    split_identities,
    staged_output,
    write_identities,
    write_json,
)
from reid.synth.people import Person, plan_people
from reid.synth.render import CameraOutput, Crop, render_camera
from reid.synth.site import MAX_CAMERAS, RIGS

DEFAULT_START = datetime(2026, 5, 4, 8, 0, 0, tzinfo=UTC)
TRAJECTORY_GAP_S = 2.0  # absences up to this long (occlusion) do not split a visit
CONTACT_DISTANCE_M = 2.0
CONTACT_MIN_SECONDS = 5.0
SEQUENCE_S = 60.0
CONTACT_COLUMNS = (
    "subject",
    "contact",
    "camera",
    "start",
    "end",
    "exposure_s",  # seconds within d in this camera
    "min_distance_m",
    "total_exposure_s",  # over all cameras, a moment seen by overlapping cameras counted once
)  # Market "sNN": a new recording sequence every minute


@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides a world; the same config always renders the same world."""

    seed: int = 0
    cameras: int = 4
    identities: int = 48
    groups: int = 6
    minutes: float = 2.0
    fps: float = 10.0
    width: int = 480
    height: int = 360
    difficulty: float = 0.5
    passer_frac: float = 0.3
    hard_negative_frac: float = 0.3
    test_frac: float = 0.5
    start: str = DEFAULT_START.isoformat()

    def validate(self) -> WorldConfig:
        """Reject impossible worlds with a message that says which knob to turn."""

        def bad(msg: str, hint: str) -> ReidTraceError:
            return ReidTraceError(msg, hint=hint)

        if not 1 <= self.cameras <= MAX_CAMERAS:
            raise bad(f"cameras must be 1..{MAX_CAMERAS}, got {self.cameras}", "try --cameras 4")
        if self.identities < 2:
            raise bad(f"identities must be >= 2, got {self.identities}", "try --identities 48")
        if self.groups < 0:
            raise bad(f"groups must be >= 0, got {self.groups}", "try --groups 6")
        if 2 * self.groups > self.identities:
            raise bad(
                f"{self.groups} groups need at least {2 * self.groups} people, "
                f"but there are only {self.identities} identities",
                "lower --groups or raise --identities (a group has 2-4 people)",
            )
        if not (0 < self.minutes <= 600):
            raise bad(f"minutes must be in (0, 600], got {self.minutes}", "try --minutes 2")
        if not (1 <= self.fps <= 60):
            raise bad(f"fps must be in [1, 60], got {self.fps}", "try --fps 10")
        if not (160 <= self.width <= 3840 and 120 <= self.height <= 2160):
            raise bad(
                f"frame size {self.width}x{self.height} is outside 160x120..3840x2160",
                "try --width 480 --height 360",
            )
        if self.width % 2 or self.height % 2:
            raise bad(f"frame size must be even, got {self.width}x{self.height}", "try 480x360")
        for name in ("difficulty", "passer_frac", "hard_negative_frac"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise bad(
                    f"{name} must be in [0, 1], got {v}", f"try --{name.replace('_', '-')} 0.5"
                )
        if not 0 < self.test_frac < 1:
            raise bad(f"test_frac must be in (0, 1), got {self.test_frac}", "try 0.5")
        self.start_time()
        return self

    def start_time(self) -> datetime:
        try:
            t = datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        except ValueError as err:
            raise ReidTraceError(
                f"start time {self.start!r} is not ISO 8601", hint="e.g. 2026-05-04T08:00:00Z"
            ) from err
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.astimezone(UTC)

    @property
    def num_frames(self) -> int:
        return int(round(self.minutes * 60 * self.fps))


def build_people(cfg: WorldConfig) -> list[Person]:
    """The identities and their plans: cheap and deterministic, so every worker rebuilds them."""
    rng = np.random.default_rng([cfg.seed, 1])
    apps = sample_appearances(
        cfg.identities, rng, hard_negative_frac=cfg.hard_negative_frac, difficulty=cfg.difficulty
    )
    return plan_people(
        apps,
        duration_s=cfg.minutes * 60,
        num_groups=cfg.groups,
        passer_frac=cfg.passer_frac,
        rng=np.random.default_rng([cfg.seed, 2]),
    )


def _render_one(args: tuple) -> CameraOutput:
    """Render one camera; ``tick(n)`` reports frames done (a queue's ``put`` in a worker)."""
    cfg, cam_index, video_path, tick = args
    import cv2

    cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would only contend
    people = build_people(cfg)
    return render_camera(
        rig=RIGS[cam_index],
        cam_number=cam_index + 1,
        people=people,
        width=cfg.width,
        height=cfg.height,
        fps=cfg.fps,
        num_frames=cfg.num_frames,
        difficulty=cfg.difficulty,
        seed=cfg.seed,
        video_path=video_path,
        progress=tick,
    )


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate_world(
    out: str | Path,
    cfg: WorldConfig,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Render the world into ``out``; returns the summary also written to ``world.json``.

    ``progress(stage, done, total)`` is called as frames are rendered (stage "render").
    """
    cfg.validate()
    with staged_output(out, overwrite) as staging:
        return _generate(staging, cfg, workers, progress)


def _generate(root: Path, cfg: WorldConfig, workers: int | None, progress: Callable | None) -> dict:
    people = build_people(cfg)
    start = cfg.start_time()
    n_frames = cfg.num_frames
    cams = list(range(cfg.cameras))
    for c in cams:
        (root / RIGS[c].name / "gt").mkdir(parents=True)
    workers = max(1, min(workers or os.cpu_count() or 1, len(cams)))
    total = n_frames * len(cams)
    outputs: dict[int, CameraOutput] = {}
    if workers == 1:
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress("render", done, total)

        for c in cams:
            outputs[c] = _render_one((cfg, c, str(root / RIGS[c].name / "video.mp4"), tick))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Manager() as manager:
            queue = manager.Queue()
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futs = {
                    c: pool.submit(
                        _render_one,
                        (cfg, c, str(root / RIGS[c].name / "video.mp4"), queue.put),
                    )
                    for c in cams
                }
                done = 0
                while not all(f.done() for f in futs.values()):
                    with contextlib.suppress(queue_mod.Empty):
                        done += queue.get(timeout=0.2)
                    if progress:
                        progress("render", done, total)
                for c, f in futs.items():
                    outputs[c] = f.result()
    if progress:
        progress("render", total, total)
    return _write_truth(root, cfg, people, outputs, start)


def _write_truth(
    root: Path,
    cfg: WorldConfig,
    people: list[Person],
    outputs: dict[int, CameraOutput],
    start: datetime,
) -> dict:
    fps = cfg.fps
    cam_starts = {c: start + timedelta(seconds=RIGS[c].start_offset_s) for c in outputs}
    # cameras.json
    cams_json = []
    for c in sorted(outputs):
        rig = RIGS[c]
        cam = rig.camera(cfg.width, cfg.height)
        cams_json.append(
            {
                "name": rig.name,
                "id": c + 1,
                "video": f"{rig.name}/video.mp4",
                "gt": f"{rig.name}/gt/gt.txt",
                "width": cfg.width,
                "height": cfg.height,
                "fps": fps,
                "num_frames": cfg.num_frames,
                "start_time": _iso(cam_starts[c]),
                "ground_units": "m",
                "H_image_to_ground": np.round(cam.image_to_ground, 10).tolist(),
                "H_ground_to_image": np.round(cam.ground_to_image, 10).tolist(),
                "position_m": list(rig.position),
                "yaw_deg": rig.yaw_deg,
                "pitch_deg": rig.pitch_deg,
                "focal_px": cam.focal_px,
            }
        )
        (root / rig.name / "seqinfo.ini").write_text(
            f"[Sequence]\nname={rig.name}\nimDir=video.mp4\nframeRate={fps:g}\n"
            f"seqLength={cfg.num_frames}\nimWidth={cfg.width}\nimHeight={cfg.height}\nimExt=.mp4\n"
        )
    write_json(root / "cameras.json", {"cameras": cams_json})
    # gt.txt per camera
    for c, o in outputs.items():
        rows = np.array(o.gt, dtype=np.float64).reshape(-1, 9)
        dets = Detections(
            xyxy=xywh_to_xyxy(rows[:, 2:6]),
            confidence=rows[:, 6],
            frame_idx=rows[:, 0].astype(np.int64),
            track_id=rows[:, 1].astype(np.int64),
            extra={"class": rows[:, 7].astype(np.int64), "visibility": rows[:, 8]},
            camera_id=RIGS[c].name,
        )
        write_mot(root / RIGS[c].name / "gt" / "gt.txt", dets)
    # trajectories: visits per identity and camera, split on absences > TRAJECTORY_GAP_S
    visits: dict[int, list[dict]] = defaultdict(list)
    for c, o in outputs.items():
        frames_by_pid: dict[int, list[int]] = defaultdict(list)
        for row in o.gt:
            frames_by_pid[row[1]].append(row[0])
        for pid, frames in frames_by_pid.items():
            f = np.array(sorted(frames))
            cuts = np.nonzero(np.diff(f) > TRAJECTORY_GAP_S * fps)[0]
            for seg in np.split(f, cuts + 1):
                t0 = cam_starts[c] + timedelta(seconds=seg[0] / fps)
                t1 = cam_starts[c] + timedelta(seconds=seg[-1] / fps)
                visits[pid].append(
                    {
                        "camera": RIGS[c].name,
                        "enter": _iso(t0),
                        "leave": _iso(t1),
                        "frames": len(seg),
                    }
                )
    traj = {
        str(pid): sorted(v, key=lambda e: (e["enter"], e["camera"]))
        for pid, v in sorted(visits.items())
    }
    write_json(root / "trajectories.json", traj)
    # contacts from the true foot positions of everyone present in a camera's frame
    obs_parts = []
    for c, o in outputs.items():
        g = np.array(o.ground, dtype=np.float64).reshape(-1, 4)
        t0 = cam_starts[c].timestamp()
        obs_parts.append((np.full(len(g), RIGS[c].name), g, t0))
    contacts = []
    if obs_parts and sum(len(g) for _, g, _ in obs_parts):
        obs = Observations(
            person=np.concatenate([g[:, 1] for _, g, _ in obs_parts]).astype(np.int64),
            camera=np.concatenate([names for names, _, _ in obs_parts]),
            frame=np.concatenate([g[:, 0] for _, g, _ in obs_parts]).astype(np.int64),
            time=np.concatenate([t0 + g[:, 0] / fps for _, g, t0 in obs_parts]),
            x=np.concatenate([g[:, 2] for _, g, _ in obs_parts]),
            y=np.concatenate([g[:, 3] for _, g, _ in obs_parts]),
            dt=np.full(sum(len(g) for _, g, _ in obs_parts), 1.0 / fps),
        )
        contacts = compute_contacts(
            obs, distance=CONTACT_DISTANCE_M, min_seconds=CONTACT_MIN_SECONDS
        )
    with (root / "contacts.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CONTACT_COLUMNS)
        for r in contacts:
            w.writerow(
                [
                    r.subject,
                    r.contact,
                    r.camera,
                    _iso(datetime.fromtimestamp(r.start, UTC)),
                    _iso(datetime.fromtimestamp(r.end, UTC)),
                    f"{r.exposure_s:.1f}",
                    f"{r.min_distance:.3f}",
                    f"{r.total_exposure_s:.2f}",
                ]
            )
    # Market-format crops
    split = split_identities(cfg.seed, cfg.identities, cfg.test_frac)
    market = write_market(root / "market", cfg, outputs, split)
    # identities.csv
    seen_cams: dict[int, set[str]] = defaultdict(set)
    for c, o in outputs.items():
        for row in o.gt:
            seen_cams[row[1]].add(RIGS[c].name)
    write_identities(
        root / "identities.csv",
        (
            (p.pid, p.appearance, p.role, p.group, split[p.pid], " ".join(sorted(seen_cams[p.pid])))
            for p in people
        ),
    )
    contact_pairs = {(r.subject, r.contact) for r in contacts}
    summary = {
        "config": asdict(cfg),
        "identities": len(people),
        "identities_seen": len(seen_cams),
        "cameras": [RIGS[c].name for c in sorted(outputs)],
        "frames_per_camera": cfg.num_frames,
        "gt_boxes": sum(len(o.gt) for o in outputs.values()),
        "groups": cfg.groups,
        "contact_pairs": len(contact_pairs) // 2,
        "visits": sum(len(v) for v in traj.values()),
        "market": market,
    }
    write_json(root / "world.json", summary)
    return summary


def write_market(
    root: Path, cfg: WorldConfig, outputs: dict[int, CameraOutput], split: dict[int, str]
) -> dict:
    """Market-1501 layout: train ids in bounding_box_train; for test ids one query per camera
    (only ids seen by >= 2 cameras, as in Market), the rest in bounding_box_test with distractors
    (0000) and junk (-1)."""
    folders = {k: root / k for k in ("bounding_box_train", "bounding_box_test", "query")}
    for d in folders.values():
        d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([cfg.seed, 4])
    fps = cfg.fps
    by_pid_cam: dict[tuple[int, int], list[tuple[int, int, Crop]]] = defaultdict(list)
    entries: list[tuple[str, int, int, int, Crop]] = []  # (folder, pid, cam, box_no, crop)
    for c in sorted(outputs):
        per_frame: dict[int, int] = defaultdict(int)
        for crop in outputs[c].crops:
            per_frame[crop.frame] += 1
            box_no = per_frame[crop.frame]
            if crop.pid <= 0:
                entries.append(("bounding_box_test", crop.pid, c + 1, box_no, crop))
            elif split[crop.pid] == "train":
                entries.append(("bounding_box_train", crop.pid, c + 1, box_no, crop))
            else:
                by_pid_cam[(crop.pid, c + 1)].append((box_no, c + 1, crop))
    cams_of: dict[int, set[int]] = defaultdict(set)
    for pid, cam in by_pid_cam:
        cams_of[pid].add(cam)
    for (pid, cam), items in sorted(by_pid_cam.items()):
        q = pick_query(items, len(cams_of[pid]), rng)
        for i, (box_no, _, crop) in enumerate(items):
            entries.append(("query" if i == q else "bounding_box_test", pid, cam, box_no, crop))
    counts: dict[str, int] = defaultdict(int)
    for folder, pid, cam, box_no, crop in entries:
        seq = 1 + int(crop.frame / fps // SEQUENCE_S)
        name = market_name(pid, cam, seq, crop.frame, box_no)
        (folders[folder] / name).write_bytes(crop.jpeg)
        counts[folder] += 1
    ids = {f: len({e[1] for e in entries if e[0] == f and e[1] > 0}) for f in folders}
    return {
        "train_images": counts["bounding_box_train"],
        "train_ids": ids["bounding_box_train"],
        "query_images": counts["query"],
        "gallery_images": counts["bounding_box_test"],
        "test_ids": ids["bounding_box_test"],
        "distractors": sum(1 for e in entries if e[1] == 0),
        "junk": sum(1 for e in entries if e[1] == -1),
    }
