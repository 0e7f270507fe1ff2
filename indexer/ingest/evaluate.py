"""``reidtrace evaluate-tracking``: stored tracks against MOTChallenge truth.

Two inputs: a synthetic world (``--world``, ingested beforehand; its truth and zones come from
``cameras.json``), or real MOTChallenge sequence folders (``--mot``: ``seqinfo.ini``,
``gt/gt.txt``, and the footage as ``img1/`` frames, a video file in the folder, or ``--video``),
which are ingested first when the store does not hold them yet (same content hash = there).

Truth and tracked boxes whose foot point lies outside the camera's zones (``reid.zones``) are
not scored, the same rule ingestion used to drop detections before tracking.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from indexer.ingest.config import IngestConfig
from indexer.ingest.runner import ingest
from indexer.ingest.sources import discover_sources
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from reid.data.mot import read_mot, write_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.evaluate.hota import hota_scores
from reid.evaluate.tracking import score_sequence, score_tracking
from reid.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, content_hash
from reid.zones import Zones

FramesRange = tuple[int, int | None]  # 1-based, inclusive; None: to the end


def evaluate_tracking(world: str | Path, *, db_url: str) -> dict:
    """MOTA, IDF1 and identity switches overall and per camera (MOTChallenge rules), inside
    each camera's zones."""
    per_camera: dict[str, dict] = {}
    hyp_boxes: dict[str, int] = {}
    for camera, gt, hyp in world_tracks(world, db_url=db_url):
        per_camera[camera] = score_tracking(gt, hyp)
        hyp_boxes[camera] = len(hyp)
    return {**pool_scores(per_camera, hyp_boxes), "per_camera": per_camera}


def score_world(world: str | Path, *, db_url: str) -> dict[str, dict]:
    """``score_sequence`` (HOTA, recall, precision too) of every camera of an ingested world;
    ``pool_sequences`` pools them."""
    return {cam: score_sequence(gt, hyp) for cam, gt, hyp in world_tracks(world, db_url=db_url)}


def world_tracks(world: str | Path, *, db_url: str) -> list[tuple[str, Detections, Detections]]:
    """``(camera, truth, stored tracks)`` of every camera of an ingested synthetic world that
    has truth, both inside the camera's zones."""
    world = Path(world)
    if not (world / "cameras.json").is_file():
        raise ReidTraceError(
            f"{world} is not a synthetic world (no cameras.json)",
            hint="run `reidtrace synth` first",
        )
    out = []
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            for s in discover_sources([world]):
                if s.gt_path is None:
                    continue
                hyp, _ = _stored_tracks(session, s.camera, s.path, f"reidtrace ingest {world}")
                out.append((s.camera, s.zones.keep(read_mot(s.gt_path)), s.zones.keep(hyp)))
    finally:
        engine.dispose()
    if not out:
        raise ReidTraceError(
            f"{world} has no gt.txt files to score against", hint="check the world"
        )
    return out


def _stored_tracks(session: Session, camera: str, path: Path, ingest_cmd: str) -> tuple:
    """The stored tracked boxes of ``path`` from ``camera`` and its image width; an error that
    says how to ingest it when the store does not hold it (done)."""
    cam = repo.get_camera_by_name(session=session, name=camera)
    video = None
    if cam is not None:
        video = repo.find_video_by_hash(
            session=session, camera_id=cam.id, content_hash=content_hash(path)
        )
    if video is None or video.status != "done":
        raise ReidTraceError(
            f"{path} of camera {camera} has not been ingested",
            hint=f"run `{ingest_cmd}` first",
        )
    return repo.detections_for_video(session=session, video_id=video.id), video.width


@dataclass(frozen=True)
class MotSequence:
    """A MOTChallenge sequence folder: its name, truth, footage and the truth's image width."""

    folder: Path
    name: str
    gt_path: Path
    footage: Path
    im_width: int | None  # seqinfo.ini imWidth: the size the truth is drawn at
    fps: float | None = None  # seqinfo.ini frameRate: the rate of an img1/ frame folder


def read_sequence(folder: str | Path, *, video: str | Path | None = None) -> MotSequence:
    """Describe a MOTChallenge folder; ``video`` is its footage when the folder has none
    (the PETS half-truth: the clip lives elsewhere)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ReidTraceError(
            f"MOT sequence {folder} is not a folder",
            hint="give a MOTChallenge folder (seqinfo.ini, gt/gt.txt, img1/)",
        )
    gt = folder / "gt" / "gt.txt"
    if not gt.is_file():
        raise ReidTraceError(
            f"{folder} has no ground truth (gt/gt.txt)",
            hint="evaluate-tracking --mot needs a sequence with its truth",
        )
    info: dict[str, str] = {}
    if (folder / "seqinfo.ini").is_file():
        ini = configparser.ConfigParser()
        try:
            ini.read(folder / "seqinfo.ini", encoding="utf-8")
        except configparser.Error as err:
            raise ReidTraceError(
                f"{folder / 'seqinfo.ini'} cannot be read: {err}", hint="fix or remove it"
            ) from err
        info = dict(ini["Sequence"]) if ini.has_section("Sequence") else {}
    footage = Path(video).expanduser() if video is not None else _footage(folder, info)
    if not footage.exists():
        raise ReidTraceError(f"the footage {footage} does not exist", hint="check --video")
    try:
        width = int(info["imwidth"]) if "imwidth" in info else None
    except ValueError as err:
        raise ReidTraceError(
            f"{folder / 'seqinfo.ini'}: imWidth is not a number", hint="fix it, or pass --gt-scale"
        ) from err
    try:
        fps = float(info["framerate"]) if "framerate" in info else None
    except ValueError as err:
        raise ReidTraceError(
            f"{folder / 'seqinfo.ini'}: frameRate is not a number", hint="fix it, e.g. 25"
        ) from err
    if fps is not None and not fps > 0:
        raise ReidTraceError(
            f"{folder / 'seqinfo.ini'}: frameRate must be > 0, got {fps}", hint="fix it, e.g. 25"
        )
    return MotSequence(folder, info.get("name") or folder.name, gt, footage, width, fps)


def _footage(folder: Path, info: dict[str, str]) -> Path:
    frames = folder / info.get("imdir", "img1")
    if frames.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in frames.iterdir()):
        return frames
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if len(videos) == 1:
        return videos[0]
    what = f"{len(videos)} videos" if videos else "no video"
    raise ReidTraceError(
        f"{folder} has no {frames.name}/ frames and {what}", hint="give the footage with --video"
    )


def parse_frames(text: str | None) -> FramesRange | None:
    """``"A:B"`` (1-based, inclusive, as MOTChallenge numbers frames; ``"A:"`` to the end)."""
    if text is None:
        return None
    first, sep, last = text.partition(":")
    try:
        lo = int(first) if first.strip() else 1
        hi = int(last) if last.strip() else None
    except ValueError:
        lo, hi = 0, None
    if not sep or lo < 1 or (hi is not None and hi < lo):
        raise ReidTraceError(
            f"bad frame range {text!r}", hint="write A:B with 1 <= A <= B, e.g. --frames 1:397"
        )
    return lo, hi


def _in_frames(dets: Detections, frames: FramesRange | None) -> Detections:
    if frames is None:
        return dets
    lo, hi = frames[0] - 1, (frames[1] - 1 if frames[1] is not None else None)
    keep = dets.frame_idx >= lo
    if hi is not None:
        keep &= dets.frame_idx <= hi
    return dets[keep]


def evaluate_mot(
    sequences: Sequence[MotSequence],
    *,
    db_url: str,
    index_path: str | Path,
    index_settings: IndexSettings,
    cfg: IngestConfig,
    frames: FramesRange | None = None,
    zones: Zones | None = None,
    score_zones: Zones | None = None,
    gt_scale: float | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Ingest each sequence (unless the store has it) and score its stored tracks: MOTA, IDF1,
    HOTA, switches, recall, precision per sequence and pooled over all of them.

    The truth is scaled by ``gt_scale``, else by the footage's width over seqinfo's imWidth
    (the PETS truth is for 768x576, its clip 480x360); only ``frames`` are scored, and only
    boxes inside ``zones`` (in the footage's pixels), which also apply at ingestion, and inside
    ``score_zones``, which apply to scoring only: an annotated area is a fact of the truth,
    not of the camera (on PETS, dropping the detections outside it before tracking cut the
    tracks of people who cross its edge: IDF1 0.57 -> 0.52)."""
    zones = zones or Zones()
    score_zones = score_zones or Zones()
    names = [seq.name for seq in sequences]
    if len(set(names)) != len(names):
        raise ReidTraceError(
            f"two sequences have the same name: {', '.join(names)}",
            hint="each sequence is a camera of its own: give each --mot once",
        )
    if gt_scale is not None and not gt_scale > 0:
        raise ReidTraceError(f"--gt-scale must be > 0, got {gt_scale}", hint="e.g. 0.625")
    per: dict[str, dict] = {}
    notes: list[str] = []  # which detector and tracking profile ran (ingested this time)
    for seq in sequences:
        report = ingest(
            [seq.footage],
            db_url=db_url,
            index_path=index_path,
            index_settings=index_settings,
            cfg=cfg,
            camera=seq.name,
            zones=zones,
            progress=progress,
            fps=seq.fps,
        )
        v = report.videos[0]
        notes += [n for n in v.notes if n.startswith(("detector", "tracker")) and n not in notes]
        if v.status not in ("done", "skipped"):
            raise ReidTraceError(
                f"ingesting {seq.footage} failed: {v.error}",
                hint="check the footage, or ingest it alone to see why",
            )
        engine = make_engine(db_url)
        try:
            with make_session_factory(engine)() as session:
                hyp, width = _stored_tracks(session, seq.name, seq.footage, "reidtrace ingest")
        finally:
            engine.dispose()
        scale = gt_scale or (width / seq.im_width if seq.im_width else 1.0)
        gt = read_mot(seq.gt_path)
        gt = Detections(
            xyxy=gt.xyxy * scale,
            confidence=gt.confidence,
            frame_idx=gt.frame_idx,
            track_id=gt.track_id,
        )
        gt = score_zones.keep(zones.keep(_in_frames(gt, frames)))
        hyp = score_zones.keep(zones.keep(_in_frames(hyp, frames)))
        scores = score_sequence(gt, hyp)
        per[seq.name] = scores | {"gt_scale": round(scale, 6), "ingest": v.status}
    return {
        "sequences": _public(per),
        "pooled": pool_sequences(per),
        "detector": cfg.detector,
        "notes": notes,
        "frames": list(frames) if frames else None,
        "zones": zones.as_json(),
    }


def pool_sequences(per: dict[str, dict]) -> dict:
    """The pooled scores of several ``score_sequence`` results: MOTA and IDF1 as
    ``pool_scores``, recall and precision from the summed boxes, HOTA from the summed
    per-threshold counts (as the HOTA authors' code combines sequences)."""
    pooled = pool_scores(per, {k: s["hyp_boxes"] for k, s in per.items()})
    gt = sum(s["gt_boxes"] for s in per.values())
    missed = sum(s["misses"] for s in per.values())
    false = sum(s["false_positives"] for s in per.values())
    counts = [s["hota_counts"] for s in per.values()]
    total = counts[0]
    for c in counts[1:]:
        total = total + c
    return {
        **pooled,
        **{k: round(v, 4) for k, v in hota_scores(total).items()},
        "recall": round((gt - missed) / max(gt, 1), 4),
        "precision": round((gt - missed) / max(gt - missed + false, 1), 4),
        "gt_boxes": gt,
    }


def _public(per: dict[str, dict]) -> dict[str, dict]:
    """Per-sequence scores as JSON values, rounded like the pooled ones."""
    return {
        name: {
            k: (round(v, 4) if isinstance(v, float) else v)
            for k, v in s.items()
            if k != "hota_counts"
        }
        for name, s in per.items()
    }


def pool_scores(per_camera: dict[str, dict], hyp_boxes: dict[str, int]) -> dict:
    """MOTA, IDF1 and switches over all cameras from their ``score_tracking`` results and
    their numbers of tracked boxes: errors summed, IDF1 as 2 IDTP / (gt + hyp boxes)."""
    totals = {k: sum(s[k] for s in per_camera.values()) for k in
              ("gt_boxes", "misses", "false_positives", "id_switches")}  # fmt: skip
    errors = totals["misses"] + totals["false_positives"] + totals["id_switches"]
    num = sum(s["idf1"] * (s["gt_boxes"] + hyp_boxes[c]) for c, s in per_camera.items())
    den = sum(s["gt_boxes"] + hyp_boxes[c] for c, s in per_camera.items())
    return {
        "mota": round(1.0 - errors / max(totals["gt_boxes"], 1), 4),
        "idf1": round(num / max(den, 1e-9), 4),
        "id_switches": totals["id_switches"],
    }


def export_tracks(
    camera: str, out: str | Path, *, db_url: str, video_id: int | None = None
) -> Path:
    """Write a camera's stored tracks as a MOTChallenge file (1-based frames of its video)."""
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            cam = repo.get_camera_by_name(session=session, name=camera)
            if cam is None:
                names = [c.name for c in repo.list_cameras(session=session)]
                raise ReidTraceError(
                    f"no camera called {camera!r}",
                    hint=f"cameras: {', '.join(names) or 'none yet'}",
                )
            videos = repo.videos_for_camera(session=session, camera_id=cam.id)
            if video_id is not None:
                videos = [v for v in videos if v.id == video_id]
            if len(videos) != 1:
                listing = ", ".join(f"{v.id}: {Path(v.path).name}" for v in videos) or "none"
                raise ReidTraceError(
                    f"camera {camera!r} has {len(videos)} matching videos",
                    hint=f"pick one with --video ID ({listing})",
                )
            dets = repo.detections_for_video(session=session, video_id=videos[0].id)
    finally:
        engine.dispose()
    out = Path(out)
    write_mot(out, dets)
    return out
