"""How search's crop-or-frame rule (``indexer.query.search.find_people``) classifies photos.

Usage::

    python benchmarks/search_photo_rule.py --crops DIR [--crops DIR ...] [--frames WORLD]
        [--detector auto] [--models-dir ~/.reidtrace/models] [--limit 200] [--json]

``--crops``: folders of person crops (e.g. a Market folder's ``query``): each should come out
"crop". ``--frames``: a synth world; one frame every 10 s of every camera, each should come out
"frame" (a whole scene: nobody covers half of it). Prints, per set and detector, the fractions
classified crop, frame and no person (an error asking for ``--crop``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from indexer.query.search import find_people
from reid.detect import create_detector
from reid.detect.catalog import resolve_detector
from reid.errors import ReidTraceError
from reid.video import probe, read_frames


def factory(name: str, models_dir: Path | None):
    made: dict = {}

    def make(hw: tuple[int, int]):
        if hw not in made:
            chosen = resolve_detector(name, {}, models_dir, hw)
            made[hw] = create_detector(chosen.name, **chosen.options)
        return made[hw]

    return make


def classify(images, detector) -> dict:
    counts = {"crop": 0, "frame": 0, "none": 0}
    for img in images:
        try:
            kind, _ = find_people(img, detector)
        except ReidTraceError:
            kind = "none"
        counts[kind] += 1
    n = sum(counts.values())
    return {"n": n, **{k: round(v / max(n, 1), 3) for k, v in counts.items()}}


def world_frames(world: Path, every_s: float = 10.0):
    for cam in sorted(p for p in world.iterdir() if (p / "video.mp4").is_file()):
        info = probe(cam / "video.mp4")
        step = max(1, round(every_s * info.fps))
        for idx, frame in read_frames(info):
            if idx % step == 0:
                yield frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=Path, action="append", default=[])
    ap.add_argument("--frames", type=Path, default=None)
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    det = factory(args.detector, args.models_dir)
    chosen = resolve_detector(args.detector, {}, args.models_dir).note
    out: dict = {"detector": chosen}
    for folder in args.crops:
        paths = sorted(folder.glob("*.jpg"))[: args.limit]
        out[str(folder)] = classify((cv2.imread(str(p)) for p in paths), det)
    if args.frames is not None:
        out[f"{args.frames} frames"] = classify(world_frames(args.frames), det)
    if args.json:
        print(json.dumps(out))
        return
    print(f"detector: {chosen}\n")
    print("| photos | n | crop | frame | no person |\n| --- | --- | --- | --- | --- |")
    for name, r in out.items():
        if isinstance(r, dict):
            print(f"| {name} | {r['n']} | {r['crop']:.3f} | {r['frame']:.3f} | {r['none']:.3f} |")


if __name__ == "__main__":
    main()
