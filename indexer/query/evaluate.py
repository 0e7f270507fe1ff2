"""``reidtrace evaluate-tracing``: trace every test identity of an ingested synthetic world and
score the answers against its truth (issue 22 item 6).

**Queries.** Each test identity (``identities.csv`` split ``test``, seen by a camera) is queried
by one of its ground-truth crops: its first ``market/query`` crop (name order) when it has one,
otherwise its largest truth box that is at least 90% visible and not cut by the frame's edge.
The crop's camera and frame name a truth box; the subject is the stored track whose box
overlaps it most in that frame (IoU >= 0.5), or, when the detector missed the person there, in
the identity's nearest frame of that camera where a stored box covers it. An identity no stored
box ever covers is traced to nothing: its true visits count as missed. This (``--query box``,
the default) scores association, trajectories and contacts on their own; ``--query photo``
puts the appearance search in front: an identity with a query crop is traced from the track
the photo search ranks first for the crop's pixels (the others keep their truth box).

**Trajectory scores.** A predicted visit matches a true one (``trajectories.json``) when the
camera agrees and their temporal IoU is >= 0.5, one to one (best IoU first). Precision = matched
predicted visits / predicted visits, recall = matched true visits / true visits, pooled over the
traced identities.

**Contact scores.** The traced subject's contacts (``indexer.query.contacts``, d = 2 m, T = 5 s
by default) are mapped to truth identities and scored as directed pairs against
``contacts.csv`` (``reid.evaluate.contact_scoring``: precision, recall, and the mean absolute
error of the total exposure over matched pairs), restricted to the traced identities as
subjects. A contact person's identity is the one with the most matched boxes over all of its
tracks (each stored box matched to the truth box of its frame with the highest IoU >= 0.5,
Hungarian per frame); a contact person of the subject's own identity (a person association
split in two) is a false contact.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sqlalchemy.orm import Session

from indexer.ingest.evaluate import world_tracks
from indexer.query.contacts import DEFAULT_MIN_SECONDS, find_contacts
from indexer.query.persons import ensure_persons
from indexer.query.trajectory import person_tracks, visits
from indexer.settings import PersonSettings
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from indexer.store.models import Track
from reid.boxes import box_iou
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.evaluate.contact_scoring import read_true_contacts, score_contacts

__all__ = [
    "VisitSpan",
    "WorldTruth",
    "box_identities",
    "evaluate_tracing",
    "read_world_truth",
    "score_visits",
]

MATCH_IOU = 0.5
"""Box IoU for a stored box to be a truth box, and temporal IoU for a visit to match."""

VisitSpan = tuple[str, float, float]  # camera, enter, leave (UTC epoch seconds)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class WorldTruth:
    """What evaluate-tracing reads from a world folder."""

    trajectories: dict[int, list[VisitSpan]]
    test_ids: list[int]
    queries: dict[int, tuple[str, int]]  # identity -> (camera, 0-based frame) of its query crop
    query_files: dict[int, Path] = field(default_factory=dict)  # identity -> that crop's file


def read_world_truth(world: str | Path) -> WorldTruth:
    """``trajectories.json``, the test identities of ``identities.csv`` and their
    ``market/query`` crops (``PPPP_cCsS_FFFFFF_NN.jpg``: camera C, frame F)."""
    world = Path(world)
    need = [world / "trajectories.json", world / "identities.csv", world / "cameras.json"]
    missing = [p.name for p in need if not p.is_file()]
    if missing:
        raise ReidTraceError(
            f"{world} is not a synthetic world (missing {', '.join(missing)})",
            hint="give the folder `reidtrace synth OUT` wrote",
        )
    raw = json.loads((world / "trajectories.json").read_text())
    traj = {
        int(pid): [(v["camera"], _epoch(v["enter"]), _epoch(v["leave"])) for v in vs]
        for pid, vs in raw.items()
    }
    with (world / "identities.csv").open(newline="") as f:
        test = sorted(
            int(r["id"]) for r in csv.DictReader(f) if r["split"] == "test" and int(r["id"]) in traj
        )
    queries: dict[int, tuple[str, int]] = {}
    files: dict[int, Path] = {}
    qdir = world / "market" / "query"
    for p in sorted(qdir.glob("*.jpg")) if qdir.is_dir() else []:
        parts = p.stem.split("_")
        pid = int(parts[0])
        if pid > 0 and pid not in queries:
            cam = int(parts[1][1 : parts[1].index("s")])
            queries[pid] = (f"cam{cam}", int(parts[2]))
            files[pid] = p
    return WorldTruth(trajectories=traj, test_ids=test, queries=queries, query_files=files)


def _temporal_iou(a: VisitSpan, b: VisitSpan) -> float:
    inter = min(a[2], b[2]) - max(a[1], b[1])
    union = max(a[2], b[2]) - min(a[1], b[1])
    return max(inter, 0.0) / union if union > 0 else float(a[1] == b[1])


def score_visits(pred: list[VisitSpan], true: list[VisitSpan]) -> int:
    """How many predicted visits match true ones: same camera, temporal IoU >= 0.5, each visit
    used once, best IoU first."""
    pairs = sorted(
        (
            (_temporal_iou(p, t), i, j)
            for i, p in enumerate(pred)
            for j, t in enumerate(true)
            if p[0] == t[0]
        ),
        reverse=True,
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    for iou, i, j in pairs:
        if iou < MATCH_IOU:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_p)


def box_identities(gt: Detections, hyp: Detections) -> dict[int, Counter[int]]:
    """Per stored track, how many of its boxes match each truth identity (IoU >= 0.5, one to
    one per frame)."""
    out: dict[int, Counter[int]] = defaultdict(Counter)
    assert gt.track_id is not None and hyp.track_id is not None
    g_frames = np.unique(gt.frame_idx)
    for f in np.intersect1d(g_frames, np.unique(hyp.frame_idx)):
        gi = np.nonzero(gt.frame_idx == f)[0]
        hi = np.nonzero(hyp.frame_idx == f)[0]
        iou = box_iou(hyp.xyxy[hi], gt.xyxy[gi])
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols, strict=True):
            if iou[r, c] >= MATCH_IOU:
                out[int(hyp.track_id[hi[r]])][int(gt.track_id[gi[c]])] += 1
    return out


def _query_box(gt: Detections, pid: int, frame: int | None) -> tuple[int, np.ndarray] | None:
    """The truth box of ``pid`` at ``frame`` (the query crop's), else its largest box that is
    considered, at least 90% visible and not cut by the frame's edge (a crop a user would pick);
    ``(frame, xyxy)``."""
    assert gt.track_id is not None
    mine = gt.track_id == pid
    if frame is not None:
        at = np.nonzero(mine & (gt.frame_idx == frame))[0]
        if len(at):
            return frame, gt.xyxy[at[0]]
    xy = gt.xyxy
    right, bottom = float(xy[:, 2].max()), float(xy[:, 3].max())  # the frame, as truth saw it
    inside = (xy[:, 0] > 1) & (xy[:, 1] > 1) & (xy[:, 2] < right - 1) & (xy[:, 3] < bottom - 1)
    visible = gt.extra.get("visibility", np.ones(len(gt))) >= 0.9
    for keep in (mine & (gt.confidence > 0) & inside & visible, mine & (gt.confidence > 0)):
        cand = np.nonzero(keep)[0]
        if len(cand):
            area = (xy[cand, 2] - xy[cand, 0]) * (xy[cand, 3] - xy[cand, 1])
            k = cand[int(np.argmax(area))]
            return int(gt.frame_idx[k]), gt.xyxy[k]
    return None


def _subject_track(gt: Detections, hyp: Detections, pid: int, frame: int) -> int | None:
    """The stored track that holds ``pid``'s truth box at ``frame`` (IoU >= 0.5); when no box
    was stored there (a missed detection), the same at ``pid``'s nearest frame that has one:
    the person in the crop is the same, and a photo search would find their track elsewhere."""
    assert gt.track_id is not None and hyp.track_id is not None
    mine = np.nonzero(gt.track_id == pid)[0]
    for k in mine[np.argsort(np.abs(gt.frame_idx[mine] - frame), kind="stable")]:
        f = gt.frame_idx[k]
        at = np.nonzero(hyp.frame_idx == f)[0]
        if not len(at):
            continue
        iou = box_iou(gt.xyxy[k][None, :], hyp.xyxy[at])[0]
        best = int(np.argmax(iou))
        if iou[best] >= MATCH_IOU:
            return int(hyp.track_id[at[best]])
    return None


def evaluate_tracing(
    world: str | Path,
    *,
    db_url: str,
    cfg: PersonSettings,
    distance: float | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    photo_track: Callable[[Path], int | None] | None = None,
) -> dict:
    """Trajectory and contact scores of every test identity of an ingested world, traced by
    its query crop (module docstring); plus per identity what was predicted, and per stored
    person the truth identity it was scored as (``person_identities``).

    ``photo_track`` (crop file -> the track a photo search puts first, or None) traces the
    identities that have a ``market/query`` crop by its pixels instead of its truth box."""
    truth = read_world_truth(world)
    if not truth.test_ids:
        raise ReidTraceError(f"{world} has no test identities with visits", hint="check the world")
    true_contacts = read_true_contacts(Path(world) / "contacts.csv")
    engine = make_engine(db_url)
    tp = n_pred = n_true = 0
    identity_of_person: dict[int, int] = {}
    per_identity: dict[str, dict] = {}
    predicted_contacts: list[tuple[int, int | None, float]] = []
    try:
        with make_session_factory(engine)() as session:
            # first: association may cut tracks (indexer.query.switches), so the stored boxes
            # are read after it
            ensure_persons(session, cfg)
            cams = {cam: (gt, hyp) for cam, gt, hyp in world_tracks(world, db_url=db_url)}
            identity_of_person, identity_of_track = _identities(session, cams)
            person_of = repo.person_map(session=session)
            for pid in truth.test_ids:
                true = truth.trajectories[pid]
                photo = truth.query_files.get(pid) if photo_track is not None else None
                if photo is not None and photo_track is not None:
                    found_track = photo_track(photo)
                    tracks = (
                        []
                        if found_track is None
                        else person_tracks(session, track_id=found_track)[1]
                    )
                else:
                    tracks = _subject_tracks(session, cams, truth, pid)
                found = visits(session, tracks, visit_gap_s=cfg.visit_gap_s, ground_path=False)
                pred = [(v.camera, v.enter.timestamp(), v.leave.timestamp()) for v in found]
                hits = score_visits(pred, true)
                tp += hits
                n_pred += len(pred)
                n_true += len(true)
                contacts = []
                if tracks:
                    rows = find_contacts(
                        session,
                        [t.id for t in tracks],
                        person_of=person_of,
                        distance=distance,
                        min_seconds=min_seconds,
                    ).rows
                    for c in rows:
                        who = (
                            identity_of_person.get(c.person_id)
                            if c.person_id is not None
                            else _majority(identity_of_track, c.track_ids)
                        )
                        contacts.append((pid, who, c.exposure_s))
                predicted_contacts += contacts
                per_identity[str(pid)] = {
                    "true": len(true),
                    "predicted": len(pred),
                    "matched": hits,
                    "contacts": [[who, round(e, 1)] for _, who, e in contacts],
                }
    finally:
        engine.dispose()
    scored = score_contacts(predicted_contacts, true_contacts, subjects=truth.test_ids)
    return {
        "query": "box" if photo_track is None else "photo",
        "identities": len(truth.test_ids),
        "trajectory_precision": tp / n_pred if n_pred else 0.0,
        "trajectory_recall": tp / n_true if n_true else 0.0,
        "contact_precision": scored.contact_precision,
        "contact_recall": scored.contact_recall,
        "exposure_mae_s": scored.exposure_mae_s,
        "visits_true": n_true,
        "visits_predicted": n_pred,
        "visits_matched": tp,
        "contact_pairs_true": scored.true_pairs,
        "contact_pairs_predicted": scored.predicted_pairs,
        "contact_pairs_matched": scored.matched_pairs,
        "per_identity": per_identity,
        "person_identities": {str(p): i for p, i in sorted(identity_of_person.items())},
    }


def _majority(identity_of_track: dict[int, Counter[int]], track_ids: Iterable[int]) -> int | None:
    votes: Counter[int] = Counter()
    for t in track_ids:
        votes.update(identity_of_track.get(t, Counter()))
    return votes.most_common(1)[0][0] if votes else None


def _subject_tracks(
    session: Session,
    cams: dict[str, tuple[Detections, Detections]],
    truth: WorldTruth,
    pid: int,
) -> list[Track]:
    """The tracks of the person traced from ``pid``'s query box (empty when not found)."""
    cam, frame = truth.queries.get(pid, (None, None))
    order = [cam] if cam in cams else []
    order += [c for c in sorted(cams) if c not in order]
    for c in order:
        gt, hyp = cams[c]
        q = _query_box(gt, pid, frame if c == cam else None)
        if q is None:
            continue
        track = _subject_track(gt, hyp, pid, q[0])
        if track is None:
            return []
        return person_tracks(session, track_id=track)[1]
    return []


def _identities(
    session: Session, cams: dict[str, tuple[Detections, Detections]]
) -> tuple[dict[int, int], dict[int, Counter[int]]]:
    """Per stored person, its truth identity (the one with most matched boxes over its
    tracks), and per track its matched boxes per identity."""
    per_track: dict[int, Counter[int]] = {}
    for gt, hyp in cams.values():
        per_track.update(box_identities(gt, hyp))
    person_of = repo.person_map(session=session)
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for tid, counts in per_track.items():
        if tid in person_of:
            votes[person_of[tid]].update(counts)
    return {p: c.most_common(1)[0][0] for p, c in votes.items() if c}, per_track
