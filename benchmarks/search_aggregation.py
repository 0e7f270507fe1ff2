"""How search should rank a track from its sightings: best, mean, or both, on a Market folder.

Usage::

    python benchmarks/search_aggregation.py MARKET_DIR [--model M.onnx] [--json]

A track is one person in one camera, several crops. A Market-1501-format gallery has that
structure in its names: the crops of one identity in one camera and sequence (``pid``, ``c``,
``s``) form a tracklet (distractors, identity 0, are each their own). Every query is scored
against every tracklet with ``indexer.query.search.aggregate_hits`` (the function the search
uses, over all sightings, i.e. a full fetch), then scored with the Market protocol
(``evaluate_rank``: same-identity-same-camera tracklets and junk ignored) for three track scores:
``best`` (the search's ranking), ``mean`` and ``(best + mean) / 2``. Prints one JSON line, or a
Markdown table without ``--json``.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("market", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = measure(args.market, args.model or default_model())
    if args.json:
        print(json.dumps(r))
        return
    print(
        f"{r['folder']}: {r['tracklets']} tracklets, {r['crops_per_tracklet_mean']} crops each "
        f"(max {r['crops_per_tracklet_max']}), model {r['model']}\n"
    )
    print("| track score | rank-1 | mAP | queries |")
    print("| --- | --- | --- | --- |")
    for name in ("best", "mean", "both"):
        s = r[name]
        print(f"| {name} | {s['rank1']:.2f} | {s['mAP']:.2f} | {s['num_query']} |")


if __name__ == "__main__":
    main()
