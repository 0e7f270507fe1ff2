"""The contacts engine alone: every identity of an ingested world traced with perfect association.

Usage::

    REIDTRACE_HOME=/tmp/b2_home python -m reidtrace ingest /tmp/w7 --detector oracle
    REIDTRACE_HOME=/tmp/b2_home python benchmarks/contacts_oracle.py /tmp/w7 [--json]
        [--distance 2.0] [--min-seconds 5.0] [--db URL]

Each stored track gets the true identity whose ``gt.txt`` boxes it overlaps (IoU >= 0.5) in most
of its frames (tracks matching no one keep no identity: their own person); that map is
``person_of``, so the association is perfect and what is measured is ``find_contacts`` alone.
Every identity with a track is traced as a subject, its contacts are mapped back to identities
and scored against the world's ``contacts.csv`` (``reid.evaluate.contact_scoring``), with the
wall time per query. Run against an oracle ingest it isolates the engine; against a detector
ingest it adds what detection and tracking cost (still with perfect cross-camera association).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from indexer.query.contacts import find_contacts
from indexer.settings import Settings
from indexer.store.db import make_engine, make_session_factory
from indexer.store.models import Camera, Detection, Track, Video
from reid.boxes import box_iou
from reid.data.mot import read_mot
from reid.evaluate.contact_scoring import read_true_contacts, score_contacts

IOU = 0.5


def detection_identities(session, world: Path) -> dict[int, int]:
    """Stored detection id -> the identity whose truth box it overlaps best (IoU >= 0.5)."""
    out: dict[int, int] = {}
    cams = {name: cid for cid, name in session.execute(select(Camera.id, Camera.name))}
    for name, cid in sorted(cams.items()):
        gt_path = world / name / "gt" / "gt.txt"
        if not gt_path.is_file():
            continue
        gt = read_mot(gt_path)
        gt_frames = {int(f): np.flatnonzero(gt.frame_idx == f) for f in np.unique(gt.frame_idx)}
        stmt = (
            select(
                Detection.id,
                Detection.frame_idx,
                Detection.x1,
                Detection.y1,
                Detection.x2,
                Detection.y2,
            )
            .join(Video, Video.id == Detection.video_id)
            .where(Video.camera_id == cid)
        )
        rows = np.array(session.execute(stmt).all(), dtype=np.float64).reshape(-1, 6)
        for f in np.unique(rows[:, 1]).astype(int).tolist():
            # MOTChallenge frames are 1-based; stored frame_idx 0-based
            g = gt_frames.get(f + 1)
            if g is None:
                continue
            mine = rows[rows[:, 1] == f]
            iou = box_iou(mine[:, 2:6], gt.xyxy[g].astype(np.float64))
            best = iou.argmax(axis=1)
            for r, j in enumerate(best.tolist()):
                if iou[r, j] >= IOU:
                    out[int(mine[r, 0])] = int(gt.track_id[g[j]])
    return out


def true_identities(session, world: Path) -> dict[int, int]:
    """Stored track id -> the identity its boxes overlap (IoU >= 0.5) most often."""
    det_identity = detection_identities(session, world)
    votes: dict[int, Counter[int]] = defaultdict(Counter)
    for did, tid in session.execute(select(Detection.id, Detection.track_id)):
        if did in det_identity:
            votes[int(tid)][det_identity[did]] += 1
    return {tid: c.most_common(1)[0][0] for tid, c in votes.items()}


def split_switches(url: str, world: Path, out_dir: Path) -> str:
    """A copy of the SQLite store whose tracks hold one identity each: every track is cut where
    its boxes change identity (an interpolated or unmatched box stays with the identity before
    it), so tracker switches no longer reach the contacts engine. Returns the copy's URL."""
    src = make_url(url).database
    if make_url(url).get_backend_name() != "sqlite" or not src:
        raise SystemExit("--split-switches needs a SQLite store file")
    dst = out_dir / "split.db"
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    engine = make_engine(f"sqlite:///{dst}")
    with make_session_factory(engine)() as session:
        det_identity = detection_identities(session, world)
        rows = session.execute(
            select(Detection.id, Detection.track_id, Detection.frame_idx).order_by(
                Detection.track_id, Detection.frame_idx
            )
        ).all()
        tracks = {t.id: t for t in session.scalars(select(Track))}
        pieces: dict[tuple[int, int], list[int]] = defaultdict(list)  # (track, piece) -> det ids
        piece_of: dict[int, tuple[int, int]] = {}
        current: dict[int, tuple[int, int | None]] = {}
        for did, tid, _ in rows:
            who = det_identity.get(did)
            piece, last = current.get(tid, (0, None))
            if who is not None and last is not None and who != last:
                piece += 1
            current[tid] = (piece, who if who is not None else last)
            pieces[(tid, piece)].append(did)
            piece_of[did] = (tid, piece)
        frame_of = {did: f for did, _, f in rows}
        for (tid, piece), dids in sorted(pieces.items()):
            if piece == 0:
                continue
            old = tracks[tid]
            v = session.get(Video, old.video_id)
            f0, f1 = min(frame_of[d] for d in dids), max(frame_of[d] for d in dids)
            new = Track(
                video_id=old.video_id,
                camera_id=old.camera_id,
                track_no=old.track_no * 1000 + piece,
                start_frame=f0,
                end_frame=f1,
                start_time=v.start_time + timedelta(microseconds=round(f0 * 1e6 / v.fps)),
                end_time=v.start_time + timedelta(microseconds=round(f1 * 1e6 / v.fps)),
                num_detections=len(dids),
            )
            session.add(new)
            session.flush()
            session.execute(update(Detection).where(Detection.id.in_(dids)).values(track_id=new.id))
        for (tid, piece), dids in pieces.items():
            if piece == 0:
                v = session.get(Video, tracks[tid].video_id)
                f0, f1 = min(frame_of[d] for d in dids), max(frame_of[d] for d in dids)
                t = tracks[tid]
                t.start_frame, t.end_frame, t.num_detections = f0, f1, len(dids)
                t.start_time = v.start_time + timedelta(microseconds=round(f0 * 1e6 / v.fps))
                t.end_time = v.start_time + timedelta(microseconds=round(f1 * 1e6 / v.fps))
        session.commit()
    engine.dispose()
    return f"sqlite:///{dst}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("world", type=Path, help="the folder `reidtrace synth` wrote")
    ap.add_argument("--db", default=None, help="database URL (default: the settings')")
    ap.add_argument("--distance", type=float, default=None)
    ap.add_argument("--min-seconds", type=float, default=5.0)
    ap.add_argument("--bridge", type=float, default=None, help="bridge_s (default: the engine's)")
    ap.add_argument(
        "--split-switches",
        action="store_true",
        help="cut stored tracks where the tracker switched identity (on a copy of the store)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    url = args.db or Settings().database_url
    tmp = tempfile.TemporaryDirectory(prefix="contacts_oracle_")
    if args.split_switches:
        url = split_switches(url, args.world, Path(tmp.name))
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    truth = read_true_contacts(args.world / "contacts.csv")
    with sessions() as session:
        identity = true_identities(session, args.world)
        all_tracks = [int(t) for t in session.scalars(select(Track.id))]
        by_identity: dict[int, list[int]] = defaultdict(list)
        for tid, pid in identity.items():
            by_identity[pid].append(tid)
        predicted = []
        times = []
        for pid, tids in sorted(by_identity.items()):
            t0 = time.perf_counter()
            answer = find_contacts(
                session,
                tids,
                person_of=identity,
                distance=args.distance,
                min_seconds=args.min_seconds,
                **({} if args.bridge is None else {"bridge_s": args.bridge}),
            )
            times.append(time.perf_counter() - t0)
            for c in answer.rows:
                predicted.append((pid, c.person_id, c.exposure_s))
    score = score_contacts(predicted, truth, subjects=list(by_identity))
    errors = {(s, c): abs(e - truth[(s, c)]) for s, c, e in predicted if (s, c) in truth}
    missed = sorted(
        set(p for p in truth if p[0] in by_identity) - {(s, c) for s, c, _ in predicted}
    )
    extra = sorted({(s, c) for s, c, _ in predicted} - set(truth))
    out = {
        **score.to_json(),
        "subjects": len(by_identity),
        "tracks": len(all_tracks),
        "tracks_with_identity": len(identity),
        "query_ms_p50": round(1000 * float(np.percentile(times, 50)), 1),
        "query_ms_max": round(1000 * max(times), 1),
        "missed": [list(p) for p in missed],
        "extra": [list(p) for p in extra],
        "worst_exposure_errors": sorted(
            ([s, c, round(e, 2), truth[(s, c)]] for (s, c), e in errors.items()),
            key=lambda r: -r[2],
        )[:8],
    }
    engine.dispose()
    tmp.cleanup()
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return
    mae = score.exposure_mae_s
    print(
        f"contacts P {score.contact_precision:.3f}  R {score.contact_recall:.3f}  "
        f"exposure MAE {'-' if mae is None else round(mae, 2)} s  "
        f"({score.matched_pairs} matched of {score.predicted_pairs} predicted, "
        f"{score.true_pairs} true; {len(by_identity)} subjects)"
    )
    print(f"query p50 {out['query_ms_p50']} ms, max {out['query_ms_max']} ms")
    print("missed:", out["missed"])
    print("extra:", out["extra"])
    print(
        "worst exposure errors [subject, contact, |err| s, true s]:", out["worst_exposure_errors"]
    )


if __name__ == "__main__":
    main()
