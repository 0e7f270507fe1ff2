"""Draw stored tracks (a MOTChallenge file from `reidtrace tracks export`) on frames of a video.

Usage::

    reidtrace ingest VIDEO --camera C --start 2009-01-01T00:00:00Z
    reidtrace tracks export tracks.txt --camera C --format mot
    python benchmarks/draw_tracks.py VIDEO tracks.txt OUT.jpg --frames 100,130,160,190

One colour and label per track id, so a switch shows as a person whose label changes between
frames. Written by hand: a few lines of OpenCV over our own MOT reader.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from reid.data.mot import read_mot
from reid.video import probe, read_frames


def colour(track: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(track * 7919)
    return tuple(int(c) for c in rng.integers(60, 256, 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("tracks", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", required=True, help="comma-separated 1-based frame numbers")
    ap.add_argument("--per-row", type=int, default=2)
    args = ap.parse_args()
    try:
        want = sorted(int(f) - 1 for f in args.frames.split(","))  # MOT frames are 1-based
    except ValueError:
        raise SystemExit(f"--frames must be comma-separated numbers, got {args.frames!r}") from None
    if not args.video.is_file() or min(want) < 0:
        raise SystemExit(f"need an existing video and frame numbers >= 1 ({args.video})")
    tracks = read_mot(args.tracks)
    tiles = []
    for k, frame in read_frames(probe(args.video)):
        if k not in want:
            continue
        sel = tracks[tracks.frame_idx == k]
        for (x0, y0, x1, y1), t in zip(sel.xyxy.astype(int), sel.track_id, strict=True):
            c = colour(int(t))
            cv2.rectangle(frame, (x0, y0), (x1, y1), c, 2)
            cv2.putText(frame, str(t), (x0, max(10, y0 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 2)
        cv2.putText(
            frame, f"frame {k + 1}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2
        )
        tiles.append(frame)
        if k >= want[-1]:
            break
    if not tiles:
        raise SystemExit(f"{args.video} has none of the frames {args.frames}")
    while len(tiles) % args.per_row:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + args.per_row]) for i in range(0, len(tiles), args.per_row)]
    cv2.imwrite(str(args.out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 80])


if __name__ == "__main__":
    main()
