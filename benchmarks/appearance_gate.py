"""How far apart the appearance cues put the same person and different people, and what tracking
with the ReID cue scores at several gates (the per-cue profile in ``reid/track/config.py``).

Usage::

    python benchmarks/appearance_gate.py [MODEL.onnx ...]              # distances (about 1 min)
    python benchmarks/appearance_gate.py --track [--model M.onnx] [--gates 0.4,0.5] [--cue fused]

Distances: on PETS 1-397 and TUD-Stadtmitte (``../shared/data``), truth boxes every 0.2 s, at
least 30 px tall, the cosine distance between two boxes of the same person 0.2-2 s apart
("same") and of two people less than 0.5 s apart ("different"), for the colour histogram
(``reid.track.appearance``) and each ReID model (default: the shipped one). Per cue: quantiles
and, per gate, the share of same pairs let through (tpr) and of different pairs (fpr).

``--track``: ``bench tracking``'s real rows with ``appearance="reid"`` (or ``--cue fused``)
and, for each gate g, the gates (g, g + 0.1, g) for (``max_cosine_distance``,
``stitch_look``, ``clutter_look``), the detector ``auto`` finds in ``$REIDTRACE_HOME/models``
(install YOLOX-Nano there first); ``--synthetic`` adds ``bench tracking``'s two rendered worlds.
Written by hand: a few matrix operations over the crop table ``reid.evaluate.domains`` builds.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import cv2
import numpy as np

from reid.detections import Detections
from reid.embed import OnnxEmbedder, default_model
from reid.evaluate.domains import cut_mot_crops, mot_crop_table, mot_sequences
from reid.track.appearance import histogram_features
from reid.video import read_frames_at

GATES = (0.1, 0.2, 0.3, 0.4, 0.5)


def distances(models: list[str]) -> None:
    embedders = {m.split("/")[-1]: OnnxEmbedder(m) for m in models}
    for name, seq in mot_sequences().items():
        if isinstance(seq, str):
            print(name, seq)
            continue
        cap = cv2.VideoCapture(str(seq.video))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        cap.release()
        gt = np.loadtxt(seq.gt, delimiter=",", ndmin=2)
        t = mot_crop_table(
            gt, frame_size=size, fps=seq.fps, scale=seq.scale, last_frame=seq.last_frame,
            step_s=0.2, max_cover=1.0, min_height=30,
        )  # fmt: skip
        frames = read_frames_at(seq.video, np.unique(t["frame"]))
        hist = np.zeros((len(t["pid"]), 72), np.float32)
        for f in np.unique(t["frame"]):
            idx = np.flatnonzero(t["frame"] == f)
            dets = Detections(
                xyxy=t["xyxy"][idx],
                confidence=np.ones(len(idx), np.float32),
                frame_idx=np.full(len(idx), int(f)),
            )
            hist[idx] = histogram_features(frames[int(f)], dets)
        crops = cut_mot_crops(seq, t)
        feats = {"histogram": hist} | {k: e.embed_crops(crops) for k, e in embedders.items()}
        pid, tm, fr = t["pid"], t["time"], t["frame"]
        dt = np.abs(tm[:, None] - tm[None, :])
        upper = np.triu(np.ones((len(pid), len(pid)), bool), 1)
        same = (pid[:, None] == pid[None, :]) & (dt <= 2.0) & (fr[:, None] != fr[None, :]) & upper
        diff = (pid[:, None] != pid[None, :]) & (dt <= 0.5) & upper
        print(
            f"{name}: {len(pid)} boxes, {int(same.sum())} same pairs, {int(diff.sum())} different"
        )
        for cue, x in feats.items():
            d = 1.0 - x @ x.T
            s, o = d[same], d[diff]
            line = (
                f"  {cue:20s} same q50/q90 {np.quantile(s, 0.5):.3f}/{np.quantile(s, 0.9):.3f} "
                f"different q5 {np.quantile(o, 0.05):.3f}"
            )
            line += "".join(
                f" | {g}: tpr {(s <= g).mean():.2f} fpr {(o <= g).mean():.3f}" for g in GATES
            )
            print(line)


def track(model: str | None, gates: list[float], cue: str, synthetic: bool = False) -> None:
    from indexer.ingest import IngestConfig
    from indexer.ingest.bench_tracking import bench_tracking
    from indexer.settings import load_settings
    from reid.track import TrackerConfig

    models_dir = str(load_settings().models_dir)
    for g in gates:
        kw = dict(max_cosine_distance=g, stitch_look=round(g + 0.1, 3), clutter_look=g)
        t0 = time.perf_counter()
        cfg = IngestConfig(
            models_dir=models_dir, appearance=cue, embedder_path=model,
            tracker=replace(TrackerConfig(), **kw), explicit=frozenset(kw),
        )  # fmt: skip
        rows = bench_tracking(cfg=cfg, worlds=None if synthetic else {})
        cols = ("mota", "idf1", "id_switches", "detector")
        out = {k: {c: v.get(c) for c in cols} for k, v in rows.items()}
        print(f"gate {g}", json.dumps(out), f"{time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="ONNX ReID models (default: the shipped one)")
    ap.add_argument("--track", action="store_true", help="tracking rows instead of distances")
    ap.add_argument("--model", default=None, help="with --track: the ReID model (default: shipped)")
    ap.add_argument("--gates", default="0.4,0.5", help="with --track: comma-separated gates")
    ap.add_argument("--cue", default="reid", help="with --track: reid or fused")
    ap.add_argument(
        "--synthetic", action="store_true", help="with --track: also bench tracking's two worlds"
    )
    args = ap.parse_args()
    if args.track:
        track(args.model, [float(g) for g in args.gates.split(",")], args.cue, args.synthetic)
    else:
        distances(args.models or [str(default_model())])


if __name__ == "__main__":
    main()
