"""A trace report from a real ingested world, before the query engine exists to make one.

Usage::

    reidtrace synth /tmp/d_world --seed 7 --cameras 2 --minutes 1
    REIDTRACE_HOME=/tmp/d_home reidtrace ingest /tmp/d_world
    python benchmarks/report_sample.py /tmp/d_world --db sqlite:////tmp/d_home/reidtrace.db \
        --out /tmp/report.html [--subject ID] [--json /tmp/trace.json] [--engine-depth 2]

Builds the trace document of issue 22 by hand from the stored rows: every stored track is
given the world identity its boxes overlap most (IoU >= 0.5 with the truth of that frame, on a
majority of its boxes), so "persons" here are the truth's identities rather than the query
engine's; the subject is ``--subject`` (default: the identity with the most true contacts).
Contacts come from ``indexer.query.contacts.find_contacts`` with those persons when
``--engine-depth N`` is given; otherwise from ``reid.contacts.compute_contacts`` on the stored
foot points, with the evidence frames (first, closest, last per camera) from the same frames.
Then it renders the report through ``SqlReportSource`` and prints, per direct contact, the
exposure from stored tracks next to the world's truth (``contacts.csv``), as one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.query.report import SqlReportSource, write_report
from indexer.store.db import make_engine
from indexer.store.models import Camera, Detection, Sighting, Track, Video
from reid.boxes import box_iou
from reid.contacts import Observations, compute_contacts
from reid.data.mot import read_mot

DISTANCE, MIN_SECONDS = 2.0, 5.0
PATH_STEP = 5  # one ground-path point every 5 frames (0.5 s at 10 fps) keeps the page small


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _identities(session: Session, world: Path) -> dict[int, tuple[int, float]]:
    """Stored track id -> (world identity, share of its boxes matching it)."""
    out: dict[int, tuple[int, float]] = {}
    for cam in session.scalars(select(Camera)):
        truth = read_mot(world / cam.name / "gt" / "gt.txt")
        by_frame: dict[int, list[int]] = defaultdict(list)
        for k, f in enumerate(truth.frame_idx.tolist()):
            by_frame[f].append(k)
        votes: dict[int, Counter[int]] = defaultdict(Counter)
        totals: Counter[int] = Counter()
        rows = session.execute(
            select(
                Detection.track_id,
                Detection.frame_idx,
                Detection.x1,
                Detection.y1,
                Detection.x2,
                Detection.y2,
            )
            .join(Track, Track.id == Detection.track_id)
            .where(Track.camera_id == cam.id)
        ).all()
        for tid, f, x1, y1, x2, y2 in rows:
            totals[tid] += 1
            cand = by_frame.get(f)
            if not cand:
                continue
            iou = box_iou(np.array([[x1, y1, x2, y2]]), truth.xyxy[cand])[0]
            best = int(np.argmax(iou))
            if iou[best] >= 0.5:
                votes[tid][int(truth.track_id[cand[best]])] += 1
        for tid, counter in votes.items():
            ident, n = counter.most_common(1)[0]
            if n * 2 > totals[tid]:
                out[tid] = (ident, n / totals[tid])
    return out


def _best_sighting(session: Session, track_ids: list[int]) -> int | None:
    stmt = (
        select(Sighting.id)
        .where(Sighting.track_id.in_(track_ids), Sighting.thumbnail.is_not(None))
        .order_by(Sighting.quality.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def build_trace(
    session: Session, world: Path, subject: int | None, depth: int = 0
) -> dict[str, Any]:
    ident = _identities(session, world)
    truth = list(csv.DictReader((world / "contacts.csv").open()))
    if subject is None:
        counts = Counter(int(r["subject"]) for r in truth)
        subject = max(counts, key=lambda s: (counts[s], -s))
    tracks = {t.id: t for t in session.scalars(select(Track)).all() if t.id in ident}
    cams = {c.id: c for c in session.scalars(select(Camera))}
    videos = {v.id: v for v in session.scalars(select(Video))}
    dets = session.execute(
        select(
            Detection.track_id,
            Detection.video_id,
            Detection.frame_idx,
            Detection.time,
            Detection.x1,
            Detection.y1,
            Detection.x2,
            Detection.y2,
            Detection.foot_x,
            Detection.foot_y,
        )
        .where(Detection.track_id.in_(list(tracks)), Detection.foot_x.is_not(None))
        .order_by(Detection.track_id, Detection.frame_idx)
    ).all()

    # trajectory: one visit per subject track
    trajectory = []
    sub_tracks = sorted(
        (t for t in tracks.values() if ident[t.id][0] == subject), key=lambda t: t.start_time
    )
    for t in sub_tracks:
        pts = [d for d in dets if d.track_id == t.id][::PATH_STEP]
        trajectory.append(
            {
                "camera": cams[t.camera_id].name,
                "video_id": t.video_id,
                "track_ids": [t.id],
                "enter": _iso(t.start_time),
                "leave": _iso(t.end_time),
                "confidence": round(ident[t.id][1], 3),
                "ground_path": [
                    [_iso(d.time), round(d.foot_x, 3), round(d.foot_y, 3)] for d in pts
                ],
            }
        )

    # contacts: the shared definition on stored foot points, persons = world identities (two
    # tracks of one identity in one frame, a tracker duplicate, count once: the first)
    seen: set[tuple[int, int, int]] = set()
    dets_all, dets = dets, []
    for d in dets_all:
        key = (ident[d.track_id][0], tracks[d.track_id].camera_id, d.frame_idx)
        if key not in seen:
            seen.add(key)
            dets.append(d)
    obs = Observations(
        person=[ident[d.track_id][0] for d in dets],
        camera=[cams[tracks[d.track_id].camera_id].name for d in dets],
        frame=[d.frame_idx for d in dets],
        time=[d.time.timestamp() for d in dets],
        x=[d.foot_x for d in dets],
        y=[d.foot_y for d in dets],
        dt=[1.0 / videos[d.video_id].fps for d in dets],
    )
    rows = [
        r
        for r in compute_contacts(obs, distance=DISTANCE, min_seconds=MIN_SECONDS)
        if r.subject == subject
    ]
    by_cam_frame: dict[tuple[str, int], dict[int, Any]] = defaultdict(dict)
    for d in dets:
        by_cam_frame[(cams[tracks[d.track_id].camera_id].name, d.frame_idx)][
            ident[d.track_id][0]
        ] = d
    contacts = []
    for person in sorted({r.contact for r in rows}):
        mine = [r for r in rows if r.contact == person]
        evidence = []
        for r in mine:
            close = []
            for (cam, f), people in by_cam_frame.items():
                if cam != r.camera or subject not in people or person not in people:
                    continue
                a, b = people[subject], people[person]
                dist = float(np.hypot(a.foot_x - b.foot_x, a.foot_y - b.foot_y))
                if dist <= DISTANCE:
                    close.append((f, dist, a, b))
            close.sort(key=lambda c: c[0])
            picks = {close[0][0]: close[0], close[-1][0]: close[-1]}
            best = min(close, key=lambda c: c[1])
            picks[best[0]] = best
            for f, dist, a, b in sorted(picks.values(), key=lambda c: c[0]):
                evidence.append(
                    {
                        "camera": r.camera,
                        "video_id": a.video_id,
                        "frame_idx": f,
                        "time": _iso(a.time),
                        "subject_box": [round(v, 1) for v in (a.x1, a.y1, a.x2, a.y2)],
                        "contact_box": [round(v, 1) for v in (b.x1, b.y1, b.x2, b.y2)],
                        "distance": round(dist, 3),
                    }
                )
        ctracks = sorted(t.id for t in tracks.values() if ident[t.id][0] == person)
        contacts.append(
            {
                "person_id": person,
                "track_ids": ctracks,
                "order": 1,
                "via_person_id": None,
                "units": "m",
                "exposure_s": round(mine[0].total_exposure_s, 2),
                "per_camera": [
                    {"camera": r.camera, "exposure_s": round(r.exposure_s, 2)} for r in mine
                ],
                "closest": round(min(r.min_distance for r in mine), 3),
                "first": _iso(datetime.fromtimestamp(min(r.start for r in mine), UTC)),
                "last": _iso(datetime.fromtimestamp(max(r.end for r in mine), UTC)),
                "thumbnail_sighting_id": _best_sighting(session, ctracks),
                "evidence": evidence,
            }
        )
    contacts.sort(key=lambda c: -c["exposure_s"])
    definition = {
        "distance": DISTANCE,
        "units": "m",
        "min_seconds": MIN_SECONDS,
        "depth": 1,
        "window_s": None,
    }
    notes = [
        "sample built by benchmarks/report_sample.py from stored rows: persons are the "
        "world's identities (stored tracks matched to the truth by IoU), not the query engine's"
    ]
    if depth:  # the query engine's contacts instead, on the same persons
        from indexer.query.contacts import find_contacts

        answer = find_contacts(
            session,
            [t.id for t in sub_tracks],
            person_of={tid: ident[tid][0] for tid in tracks},
            depth=depth,
        ).to_json()
        contacts, definition = answer["contacts"], answer["contact_definition"]
        notes = [*notes[:1], "contacts by indexer.query.contacts.find_contacts", *answer["notes"]]
    query = sorted((world / "market").glob(f"*/{subject:04d}_c*.jpg"))
    model = session.scalars(select(Sighting.model).limit(1)).first()
    return {
        "subject": {
            "kind": "photo" if query else "person",
            "query": str(query[0]) if query else None,
            "person_id": subject,
            "track_ids": [t.id for t in sub_tracks],
            "score": None,
        },
        "model": model,
        "contact_definition": definition,
        "trajectory": trajectory,
        "contacts": contacts,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("world", type=Path)
    ap.add_argument("--db", required=True, help="database URL of the ingested world")
    ap.add_argument("--out", type=Path, default=Path("/tmp/report.html"))
    ap.add_argument("--subject", type=int, default=None, help="world identity to trace")
    ap.add_argument("--json", type=Path, default=None, help="also write the trace here")
    ap.add_argument(
        "--engine-depth",
        type=int,
        default=0,
        help="take the contacts from indexer.query.contacts.find_contacts at this depth (1-3) "
        "instead of computing them here",
    )
    args = ap.parse_args()
    engine = make_engine(args.db)
    with Session(engine) as session:
        trace = build_trace(session, args.world, args.subject, args.engine_depth)
        t0 = time.perf_counter()
        write_report(trace, SqlReportSource(session), args.out)
        render_s = time.perf_counter() - t0
    if args.json:
        args.json.write_text(json.dumps(trace, indent=1))
    subject = trace["subject"]["person_id"]
    truth = {
        int(r["contact"]): float(r["total_exposure_s"])
        for r in csv.DictReader((args.world / "contacts.csv").open())
        if int(r["subject"]) == subject
    }
    found = {
        c["person_id"]: c["exposure_s"]
        for c in trace["contacts"]
        if c["order"] == 1 and c["person_id"] is not None  # None: a track matched to nobody
    }
    print(
        json.dumps(
            {
                "report": str(args.out),
                "bytes": args.out.stat().st_size,
                "render_s": round(render_s, 3),
                "evidence_frames": sum(len(c["evidence"]) for c in trace["contacts"]),
                "subject": subject,
                "visits": len(trace["trajectory"]),
                "rows": len(trace["contacts"]),
                "contacts": {
                    str(p): {"stored_s": found.get(p), "truth_s": truth.get(p)}
                    for p in sorted(set(found) | set(truth))
                },
            }
        )
    )


if __name__ == "__main__":
    main()
