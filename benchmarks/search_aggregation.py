"""How search should rank a track from its sightings: best, mean, or both, on a Market folder.

Usage::

    python benchmarks/search_aggregation.py MARKET_DIR [--model M.onnx] [--json]
    python benchmarks/search_aggregation.py --world WORLD --db URL --index FILE [--json]

A track is one person in one camera, several crops. A Market-1501-format gallery has that
structure in its names: the crops of one identity in one camera and sequence (``pid``, ``c``,
``s``) form a tracklet (distractors, identity 0, are each their own). Every query is scored
against every tracklet with ``indexer.query.search.aggregate_hits`` (the function the search
uses, over all sightings, i.e. a full fetch), then scored with the Market protocol
(``evaluate_rank``: same-identity-same-camera tracklets and junk ignored) for three track
scores: ``best``, ``mean`` (the search's default ranking) and ``(best + mean) / 2``. Prints one
JSON line, or a Markdown table without ``--json``.

``--world``: the same on real stored tracks (``--rerank``: the search with query expansion).
The world (``reidtrace synth``) must be ingested into the store ``--db`` / ``--index``
(``reidtrace ingest WORLD``, up to 5 sightings per track). Each stored track gets the truth
identity that most of its boxes match (IoU >= 0.5, greedy per frame; 0, a distractor, when
under half do); the world's Market queries (crops of the same footage) go through
``Searcher.search_vectors`` with every track returned, and tracks are scored with the Market
protocol (same identity in the query's camera ignored).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from indexer.query.search import aggregate_hits
from indexer.store.repo import SightingPlace
from reid.data.market import read_market
from reid.embed import OnnxEmbedder, default_model
from reid.evaluate.protocol import evaluate_rank


def measure(folder: Path, model: Path) -> dict:
    data = read_market(folder, require_train=False)
    gallery = [im for im in data.gallery if im.pid != -1]  # junk is ignored by the protocol
    keys: dict[tuple[int, int, int, int], int] = {}
    track_of = []
    for i, im in enumerate(gallery):
        key = (im.pid, im.camid, im.seq, i if im.pid == 0 else -1)  # distractors: one each
        track_of.append(keys.setdefault(key, len(keys)))
    t_pids = np.zeros(len(keys), np.int64)
    t_cams = np.zeros(len(keys), np.int64)
    for (pid, cam, _, _), t in keys.items():
        t_pids[t], t_cams[t] = pid, cam
    now = datetime(2000, 1, 1, tzinfo=UTC)
    places = {
        i: SightingPlace(i, track_of[i], 0, 1, f"c{im.camid}", now, now)
        for i, im in enumerate(gallery)
    }
    emb = OnnxEmbedder(model)
    qf = emb.embed_paths([im.path for im in data.query])
    gf = emb.embed_paths([im.path for im in gallery])
    sims = qf @ gf.T
    ids = np.arange(len(gallery))
    dist = {
        name: np.full((len(qf), len(keys)), 4.0, np.float32) for name in ("best", "mean", "both")
    }
    for q in range(len(qf)):
        order = np.argsort(-sims[q], kind="stable")
        for h in aggregate_hits(sims[q][order], ids[order], places):
            dist["best"][q, h.track_id] = 1 - h.score
            dist["mean"][q, h.track_id] = 1 - h.mean_score
            dist["both"][q, h.track_id] = 1 - (h.score + h.mean_score) / 2
    q_pids, q_cams = data.arrays("query")
    out = {
        name: evaluate_rank(d, q_pids, t_pids, q_cams, t_cams).as_percent()
        for name, d in dist.items()
    }
    sizes = np.bincount(track_of)
    return {
        "folder": str(folder),
        "model": emb.model_id,
        "tracklets": len(keys),
        "crops_per_tracklet_mean": round(float(sizes.mean()), 2),
        "crops_per_tracklet_max": int(sizes.max()),
        **out,
    }


def track_identities(world: Path, db_url: str) -> dict[int, int]:
    """Stored track id -> the truth identity most of its boxes match (0: none for half)."""
    from collections import Counter, defaultdict

    from indexer.ingest.evaluate import world_tracks
    from reid.boxes import box_iou

    votes: dict[int, Counter] = defaultdict(Counter)
    for _, truth, hyp in world_tracks(world, db_url=db_url):
        for f in np.unique(hyp.frame_idx):
            h, t = hyp[hyp.frame_idx == f], truth[truth.frame_idx == f]
            taken: set[int] = set()
            iou = box_iou(h.xyxy, t.xyxy) if len(t) else np.zeros((len(h), 0))
            for i in np.argsort(-iou.max(axis=1) if iou.size else np.zeros(len(h))):
                j = int(np.argmax(iou[i])) if iou.shape[1] else -1
                ok = j >= 0 and iou[i, j] >= 0.5 and j not in taken
                if ok:
                    taken.add(j)
                votes[int(h.track_id[i])][int(t.track_id[j]) if ok else 0] += 1
    out = {}
    for tid, c in votes.items():
        pid, n = c.most_common(1)[0]
        out[tid] = pid if n * 2 >= sum(c.values()) else 0
    return out


def measure_world(world: Path, db_url: str, index: Path, model: Path, rerank: bool = False) -> dict:
    from indexer.query.search import Searcher
    from indexer.store.db import make_engine
    from reid.embed import create_embedder

    labels = track_identities(world, db_url)
    searcher = Searcher.open(
        engine=make_engine(db_url),
        index_location=index,
        embedder=create_embedder("onnx", path=model),
    )
    data = read_market(world / "market", require_train=False)
    tracks = sorted(labels)
    col = {t: i for i, t in enumerate(tracks)}
    t_pids = np.array([labels[t] for t in tracks])
    t_cams = np.zeros(len(tracks), np.int64)
    dist = {
        n: np.full((len(data.query), len(tracks)), 4.0, np.float32)
        for n in ("best", "mean", "both")
    }
    for q, im in enumerate(data.query):
        _, vec = searcher.query_vectors(im.path, mode="crop")
        for h in searcher.search_vectors(vec, top_k=len(tracks), rerank=rerank)[0]:
            if h.track_id not in col:
                continue
            c = col[h.track_id]
            t_cams[c] = int(h.camera.removeprefix("cam"))
            dist["best"][q, c] = 1 - h.score
            dist["mean"][q, c] = 1 - h.mean_score
            dist["both"][q, c] = 1 - (h.score + h.mean_score) / 2
    q_pids, q_cams = data.arrays("query")
    out = {
        name: evaluate_rank(d, q_pids, t_pids, q_cams, t_cams).as_percent()
        for name, d in dist.items()
    }
    return {
        "folder": f"{world} (stored tracks)",
        "rerank": rerank,
        "model": searcher.embedder.model_id,
        "tracklets": len(tracks),
        "identified_tracks": int((t_pids > 0).sum()),
        "crops_per_tracklet_mean": None,
        "crops_per_tracklet_max": None,
        **out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("market", type=Path, nargs="?")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--world", type=Path, default=None)
    ap.add_argument("--db", default=None)
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--rerank", action="store_true", help="--world: with query expansion")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = args.model or default_model()
    if args.world is not None:
        r = measure_world(args.world, args.db, args.index, model, args.rerank)
    else:
        r = measure(args.market, model)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['folder']}: {r['tracklets']} tracks, model {r['model']}\n")
    print("| track score | rank-1 | mAP | queries |")
    print("| --- | --- | --- | --- |")
    for name in ("best", "mean", "both"):
        s = r[name]
        print(f"| {name} | {s['rank1']:.2f} | {s['mAP']:.2f} | {s['num_query']} |")


if __name__ == "__main__":
    main()
