"""Where tracking errs on the real sequences: false positives, misses and identity errors by kind.

Usage::

    python benchmarks/tracking_errors.py CACHE [--detector YOLOX-Nano|NanoDet] [KEY=VALUE ...]

Replays the tracker on the detections ``defaults_table.py`` cached in ``CACHE`` (run it first;
its detector's tracking profile applies, then the ``KEY=VALUE`` settings), scores PETS (frames
1-397, annotated area) and TUD-Stadtmitte with motmetrics as ``score_sequence`` does, and sorts
the errors:

* false positives: ``localisation`` (a truth box within IoU 0.3-0.5, none matched by another
  track), ``duplicate`` (overlaps a truth box that another track already matched at >= 0.5),
  ``ghost`` (no truth box near: scenery, the far background), and how many were interpolated
  gap boxes (confidence 0);
* misses: ``localisation`` (a track box at IoU 0.3-0.5), ``detected, not tracked`` (a cached
  detector box at IoU >= 0.5 existed: split by its score against the two-stage bars),
  ``occluded`` (over 30 % of the box covered by another truth box), ``small`` (under 50 px
  tall), ``other``;
* identity: switches (motmetrics' SWITCH events) by place (``edge``: within 5 % of the frame's
  side, ``crossing``: the truth box overlaps another, ``open``), and fragmentation (how many
  tracks each person's matched boxes fall into, and the gaps between consecutive fragments).

Written by hand: a short loop over motmetrics' event table and the cached boxes.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from defaults_table import SHARED_DATA, sequences  # benchmarks/ is the script's folder

from indexer.ingest import IngestConfig
from reid.boxes import box_area, box_intersection, box_iou
from reid.detections import Detections
from reid.evaluate.tracking import _scored_frames, iou_distance
from reid.video import probe

FAMILY = {"NanoDet": "nanodet", "YOLOX-Nano": "yolox"}


def analyse(video, cfg: IngestConfig, width: int) -> dict:
    import motmetrics as mm

    hyp = video.track(cfg)
    acc = mm.MOTAccumulator(auto_id=False)
    frames = {}
    for f, g_ids, h_ids, g_xyxy, h_xyxy in _scored_frames(video.gt, hyp, 0.5):
        acc.update(g_ids.tolist(), h_ids.tolist(), iou_distance(g_xyxy, h_xyxy), frameid=f)
        frames[f] = (g_ids, h_ids, g_xyxy, h_xyxy)
    ev = acc.mot_events.reset_index()
    conf = {
        (int(f), int(t)): float(c)
        for f, t, c in zip(hyp.frame_idx, hyp.track_id, hyp.confidence, strict=True)
    }
    fp, fn, sw = Counter(), Counter(), Counter()
    places: list[tuple[int, int, int]] = []  # a switch's frame, truth box centre x and bottom
    matched = {}  # (frame, gt id) -> hyp id
    for row in ev.itertuples():
        if row.Type in ("MATCH", "SWITCH"):
            matched[(int(row.FrameId), int(row.OId))] = int(row.HId)
    for row in ev.itertuples():
        f = int(row.FrameId)
        g_ids, h_ids, g_xyxy, h_xyxy = frames[f]
        if row.Type == "FP":
            h = h_xyxy[list(h_ids).index(row.HId)][None]
            iou = box_iou(g_xyxy, h)[:, 0] if len(g_xyxy) else np.zeros(0)
            taken = np.array([(f, int(g)) in matched for g in g_ids], bool)
            if len(iou) and (iou[taken] >= 0.5).any():
                kind = "duplicate"
            elif len(iou) and (iou >= 0.3).any():
                kind = "localisation"
            else:
                kind = "ghost"
            fp[kind] += 1
            if conf.get((f, int(row.HId)), 1.0) == 0.0:
                fp["(of which interpolated)"] += 1
        elif row.Type == "MISS":
            i = list(g_ids).index(row.OId)
            g = g_xyxy[i][None]
            if len(h_xyxy) and (box_iou(h_xyxy, g)[:, 0] >= 0.3).any():
                fn["localisation"] += 1
                continue
            raw = video.dets.get(f, Detections.empty())
            iou = box_iou(raw.xyxy, g)[:, 0] if len(raw) else np.zeros(0)
            if (iou >= 0.5).any():
                score = float(raw.confidence[iou >= 0.5].max())
                bar = cfg.low_score if cfg.low_score is not None else video.high_score
                kind = ("strong" if score >= video.high_score else
                        "weak" if score >= bar else "under low_score")  # fmt: skip
                fn[f"detected ({kind}), not tracked"] += 1
                continue
            others = np.delete(g_xyxy, i, axis=0)
            cover = (box_intersection(g, others).max() / box_area(g)[0]) if len(others) else 0
            h = g[0, 3] - g[0, 1]
            fn["occluded" if cover > 0.3 else "small" if h < 50 else "other"] += 1
        elif row.Type == "SWITCH":
            i = list(g_ids).index(row.OId)
            x0, _, x1, _ = g_xyxy[i]
            others = np.delete(g_xyxy, i, axis=0)
            if x0 < 0.05 * width or x1 > 0.95 * width:
                where = "edge"
            elif len(others) and (box_iou(g_xyxy[i][None], others) > 0).any():
                where = "crossing"
            else:
                where = "open"
            sw[where] += 1
            places.append((f, int((x0 + x1) / 2), int(g_xyxy[i][3])))
    # fragmentation: tracks per person and the frame gaps between a person's fragments
    per: dict[int, list[tuple[int, int]]] = {}
    for (f, g), h in sorted(matched.items()):
        per.setdefault(g, []).append((f, h))
    pieces, gaps = Counter(), []
    for seq in per.values():
        runs = [seq[0]]
        for f, h in seq[1:]:
            if h != runs[-1][1]:
                gaps.append(f - runs[-1][0])
            runs.append((f, h))
        pieces[len({h for _, h in seq})] += 1
    return {
        "false_positives": dict(fp),
        "misses": dict(fn),
        "switches": dict(sw),
        "switch_places": places,
        "people_by_tracks": dict(sorted(pieces.items())),
        "fragment_gaps": sorted(gaps),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("settings", nargs="*", help="KEY=VALUE (python literals)")
    ap.add_argument("--detector", default="YOLOX-Nano", choices=sorted(FAMILY))
    ap.add_argument("--shared", type=Path, default=SHARED_DATA)
    args = ap.parse_args()
    kw = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.settings)}
    models = "models" if args.detector == "YOLOX-Nano" else "no-models"
    cfg = replace(IngestConfig.from_settings(**kw), models_dir=str(args.cache / models))
    cfg = cfg.for_detector(FAMILY[args.detector])[0].validate()
    seqs = sequences(args.shared, args.cache)
    out = {}
    for name in ("PETS", "TUD"):
        (video,) = seqs[name]
        video.detect(cfg, args.cache, args.detector)
        width = probe(video.source.path).width
        out[name] = analyse(video, cfg, width)
    for name, o in out.items():
        print(name, json.dumps({k: v for k, v in o.items() if k != "switch_places"}))
        print("  switches at (frame, x, bottom):", o["switch_places"], file=sys.stderr)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
