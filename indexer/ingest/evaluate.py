"""``reidtrace evaluate-tracking``: stored tracks of an ingested synthetic world vs its truth."""

from __future__ import annotations

from pathlib import Path

from indexer.ingest.sources import discover_sources
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from reid.data.mot import read_mot, write_mot
from reid.errors import ReidTraceError
from reid.evaluate.tracking import score_tracking
from reid.video import content_hash


def evaluate_tracking(world: str | Path, *, db_url: str) -> dict:
    """MOTA, IDF1 and identity switches overall and per camera (MOTChallenge rules)."""
    world = Path(world)
    if not (world / "cameras.json").is_file():
        raise ReidTraceError(
            f"{world} is not a synthetic world (no cameras.json)",
            hint="run `reidtrace synth` first",
        )
    sources = discover_sources([world])
    engine = make_engine(db_url)
    per_camera: dict[str, dict] = {}
    hyp_boxes: dict[str, int] = {}
    try:
        with make_session_factory(engine)() as session:
            for s in sources:
                if s.gt_path is None:
                    continue
                cam = repo.get_camera_by_name(session=session, name=s.camera)
                video = None
                if cam is not None:
                    video = repo.find_video_by_hash(
                        session=session, camera_id=cam.id, content_hash=content_hash(s.path)
                    )
                if video is None or video.status != "done":
                    raise ReidTraceError(
                        f"{s.path} of camera {s.camera} has not been ingested into {db_url}",
                        hint=f"run `reidtrace ingest {world}` first",
                    )
                hyp = repo.detections_for_video(session=session, video_id=video.id)
                gt = read_mot(s.gt_path)
                per_camera[s.camera] = score_tracking(gt, hyp)
                hyp_boxes[s.camera] = len(hyp)
    finally:
        engine.dispose()
    if not per_camera:
        raise ReidTraceError(
            f"{world} has no gt.txt files to score against", hint="check the world"
        )
    return {**pool_scores(per_camera, hyp_boxes), "per_camera": per_camera}


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
