"""The end-to-end demo on the embedded defaults: every stage, scored against the truth.

1. render the demo world (4 cameras x 2 minutes, seed 7) with its ground truth;
2. evaluate the shipped ReID model on the world's Market-format crops (mAP, rank-1);
3. ingest the four videos with the default detector (the best installed), tracker and embedder
   into a demo store;
4. score the stored tracks against the truth (MOTA, IDF1) and check the index against SQL;
5. trace one subject by photo: the ``market/query`` crop of the test identity (of those with a
   query crop) with the most true contacts, searched as a crop, traced (trajectory, contacts
   at d = 2 m, T = 5 s, depth 1) and written as ``trace_report.html``, side by side with that
   identity's truth; then score every test identity the same way (``evaluate-tracing --world
   DIR --query photo``).

Stage 5 makes the calls ``reidtrace trace CROP --crop --report`` and ``reidtrace
evaluate-tracing --query photo`` make (``photo_subject``, ``trace``, ``write_report``,
``evaluate_tracing``), on the demo's store and the default person settings.

Everything goes under one folder (default ``$REIDTRACE_HOME/demo``), rebuilt on each run, so
the demo never touches the user's own database or index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexer.index import verify_index
from indexer.ingest import IngestConfig, ingest
from indexer.ingest.evaluate import evaluate_tracking
from indexer.query.evaluate import WorldTruth, evaluate_tracing, read_world_truth
from indexer.query.report import SqlReportSource, write_report
from indexer.query.search import Searcher
from indexer.query.session import query_session
from indexer.query.trace import photo_subject, photo_track_finder, trace
from indexer.settings import IndexSettings, PersonSettings
from indexer.store.db import make_engine
from reid.embed import create_embedder, default_model, model_identity
from reid.evaluate.contact_scoring import read_true_contacts
from reid.evaluate.run import evaluate_model
from reid.synth.preview import write_preview
from reid.synth.world import WorldConfig, generate_world


def run_demo(
    target: Path,
    *,
    seed: int = 7,
    workers: int | None = None,
    model: str | None = None,
    world_config: WorldConfig | None = None,
    threads: int | None = None,
    models_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Run every stage and return one summary (also what ``reidtrace demo --json`` prints).

    ``threads`` caps ONNX Runtime's threads in evaluation and ingestion (default: one per core);
    the scores are the same either way, but one thread keeps a test beside others on its core.
    The detector is ``auto``: the best one installed in ``models_dir`` (else the bundled NanoDet),
    named in the summary.
    """
    t0 = time.perf_counter()
    world = generate_world(
        target,
        world_config or WorldConfig(seed=seed),
        workers=workers,
        overwrite=True,
        progress=progress,
    )
    world["preview"] = str(write_preview(target))
    t_world = time.perf_counter() - t0
    reid_scores = evaluate_model(target / "market", model, threads=threads, progress=progress)
    db_url = f"sqlite:///{target / 'reidtrace.db'}"
    report = ingest(
        [target],
        db_url=db_url,
        index_path=target / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(
            embedder_path=model,
            threads=threads,
            models_dir=None if models_dir is None else str(models_dir),
        ),
        workers=workers or 2,
        progress=progress,
    ).as_dict()
    tracking = evaluate_tracking(target, db_url=db_url) if report["ok"] else {}
    verify = verify_index(
        make_engine(db_url), target / "index.faiss", model_identity(model or default_model())
    )
    traced, tracing = {}, {}
    if report["ok"] and verify.ok:
        traced, tracing = trace_demo_subject(
            target, db_url=db_url, model=model, threads=threads, progress=progress
        )
    return {
        "world": world,
        "world_seconds": round(t_world, 1),
        "reid": reid_scores,
        "ingest": report["totals"] | {"index_vectors": report["index"].get("count", 0)},
        "detectors": sorted(
            {n for v in report["videos"] for n in v["notes"] if n.startswith("detector")}
        ),
        "ingest_errors": [v["error"] for v in report["videos"] if v["error"]],
        "tracking": tracking,
        "index_ok": verify.ok,
        "trace": traced,
        "tracing": tracing,
        "seconds": round(time.perf_counter() - t0, 1),
        "folder": str(target),
    }


TRACING_SCORES = (
    "trajectory_precision",
    "trajectory_recall",
    "contact_precision",
    "contact_recall",
    "exposure_mae_s",
)
"""The five numbers of ``evaluate-tracing`` the demo reports (its ``tracing`` entry)."""


def pick_subject(truth: WorldTruth, true_contacts: dict[tuple[int, int], float]) -> int | None:
    """The test identity with a ``market/query`` crop that has the most true contacts (ties:
    the most total exposure, then the lowest id), so the demo's trace has contacts to show;
    None when no test identity has a query crop."""
    have = [pid for pid in truth.test_ids if pid in truth.query_files]
    if not have:
        return None

    def key(pid: int) -> tuple[int, float, int]:
        mine = [e for (s, _), e in true_contacts.items() if s == pid]
        return -len(mine), -sum(mine), pid

    return min(have, key=key)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def trace_demo_subject(
    world: Path,
    *,
    db_url: str,
    model: str | None = None,
    threads: int | None = None,
    persons: PersonSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 5 of the demo on an ingested world: ``(trace, tracing)`` summary entries.

    ``trace``: the subject (its photo, true identity, the track and person the search picked,
    and the identity that person was scored as), its trajectory and contacts (each labelled
    with its truth identity), the truth of that identity (visits, contacts with exposure), the
    report's path and the contact definition. ``tracing``: the five scores of
    ``evaluate-tracing --query photo`` over every test identity, and how many were traced.
    """
    cfg = persons or PersonSettings()
    t0 = time.perf_counter()
    truth = read_world_truth(world)
    true_contacts = read_true_contacts(world / "contacts.csv")
    pid = pick_subject(truth, true_contacts)
    if pid is None:
        return {"error": "no test identity has a market/query crop: nothing to trace"}, {}
    photo = truth.query_files[pid]
    if progress:
        progress("tracing a subject by photo", 0, 2)
    engine = make_engine(db_url)
    try:
        searcher = Searcher.open(
            engine=engine,
            index_location=world / "index.faiss",
            embedder=create_embedder("onnx", path=model or default_model(), threads=threads),
        )
        track, score = photo_subject(searcher, photo, crop=True)  # trace CROP --crop
        report_path = world / "trace_report.html"
        with query_session(db_url) as session:
            doc = trace(session, cfg, track_id=track, query=str(photo), score=score)
            write_report(doc, SqlReportSource(session), report_path)
        if progress:
            progress("scoring every test identity", 1, 2)
        scored = evaluate_tracing(
            world, db_url=db_url, cfg=cfg, photo_track=photo_track_finder(searcher)
        )
    finally:
        engine.dispose()
    if progress:
        progress("scoring every test identity", 2, 2)
    identity = {int(p): i for p, i in scored["person_identities"].items()}
    sub = doc["subject"]
    mine = sorted(
        ((c, e) for (s, c), e in true_contacts.items() if s == pid), key=lambda x: (-x[1], x[0])
    )
    traced = {
        "subject": {
            "photo": str(photo),
            "identity": pid,
            "track_id": track,
            "person_id": sub["person_id"],
            "track_ids": sub["track_ids"],
            "score": sub["score"],
            "found_identity": identity.get(sub["person_id"]),
        },
        "contact_definition": doc["contact_definition"],
        "trajectory": [
            {k: v for k, v in vis.items() if k != "ground_path"} for vis in doc["trajectory"]
        ],
        "contacts": [
            {
                "person_id": c["person_id"],
                "identity": identity.get(c["person_id"]) if c["person_id"] is not None else None,
                "track_ids": c["track_ids"],
                "order": c["order"],
                "exposure_s": c["exposure_s"],
                "per_camera": c["per_camera"],
                "closest": c["closest"],
                "units": c["units"],
                "first": c["first"],
                "last": c["last"],
            }
            for c in doc["contacts"]
        ],
        "notes": doc["notes"],
        "truth": {
            "trajectory": [
                {"camera": cam, "enter": _iso(a), "leave": _iso(b)}
                for cam, a, b in sorted(truth.trajectories[pid], key=lambda v: v[1])
            ],
            "contacts": [{"identity": c, "exposure_s": round(e, 1)} for c, e in mine],
        },
        "report": str(report_path),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    tracing = {k: scored[k] for k in TRACING_SCORES} | {
        "query": scored["query"],
        "identities": scored["identities"],
    }
    return traced, tracing
