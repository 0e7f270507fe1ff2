"""Draw each stored track as a strip of its crops, for checking tracks by eye.

Usage::

    reidtrace ingest VIDEO --camera C --start 2009-01-01T00:00:00Z
    reidtrace tracks export tracks.txt --camera C --format mot
    python benchmarks/track_strips.py VIDEO tracks.txt OUT_DIR [--per-row 12] [--tracks-per-sheet 8]
    python benchmarks/track_strips.py VIDEO tracks.txt OUT_DIR --tracks 6,18 --per-row 24 \\
        --first 300 --last 500 --prefix zoom

One row per track: its id (in the colour ``draw_tracks.py`` gives it), first and last frame and
box count, then ``--per-row`` crops sampled evenly over its boxes (not over time, so every crop
holds a box), each scaled to ``--height`` pixels with its 1-based frame number under it. A track
that jumps from one person to another shows as a row whose clothes change. Rows are packed
``--tracks-per-sheet`` to a sheet, written as ``OUT_DIR/PREFIX_NN.png`` (or ``.jpg`` with
``--jpeg-quality``). ``--first``/``--last`` keep only boxes in that frame range, to look closer
at a doubtful stretch. Written by hand: a few lines of OpenCV over our own MOT and video readers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from reid.data.mot import read_mot
from reid.errors import ReidTraceError
from reid.video import probe, read_frames

sys.path.insert(0, str(Path(__file__).resolve().parent))
from draw_tracks import colour  # a sibling script, not a package

LABEL_W = 150  # width of the text panel at the left of each row
CAPTION_H = 16  # room under each crop for its frame number
WHITE = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 2:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 2, got {value}")
    return value


def id_list(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated track ids, got {text!r}"
        ) from None
    if not ids:
        raise argparse.ArgumentTypeError("expected at least one track id")
    return ids


def sample_rows(
    frames: np.ndarray, ids: np.ndarray, wanted: list[int], per_row: int
) -> dict[int, np.ndarray]:
    """For each wanted track, the indices (into the MOT rows) of ``per_row`` evenly spread boxes."""
    picks: dict[int, np.ndarray] = {}
    for t in wanted:
        rows = np.flatnonzero(ids == t)
        rows = rows[np.argsort(frames[rows], kind="stable")]
        if len(rows) > per_row:
            rows = rows[np.round(np.linspace(0, len(rows) - 1, per_row)).astype(int)]
        picks[t] = rows
    return picks


def crop(frame: np.ndarray, box: np.ndarray, pad: float, height: int) -> np.ndarray:
    """The box plus ``pad`` of its size on each side, clipped to the frame, scaled to ``height``."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    h, w = frame.shape[:2]
    xa, ya = max(0, int(x0 - dx)), max(0, int(y0 - dy))
    xb, yb = min(w, int(np.ceil(x1 + dx))), min(h, int(np.ceil(y1 + dy)))
    if xb <= xa or yb <= ya:  # a box wholly outside the frame
        return np.zeros((height, height // 3, 3), np.uint8)
    patch = frame[ya:yb, xa:xb]
    width = max(1, round(patch.shape[1] * height / patch.shape[0]))
    return cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR)


def fit_cell(patch: np.ndarray, cell_w: int, caption: str) -> np.ndarray:
    """Centre ``patch`` in a cell ``cell_w`` wide (squeezing it if wider), caption underneath."""
    h = patch.shape[0]
    if patch.shape[1] > cell_w:
        patch = cv2.resize(patch, (cell_w, h), interpolation=cv2.INTER_AREA)
    cell = np.zeros((h + CAPTION_H, cell_w, 3), np.uint8)
    left = (cell_w - patch.shape[1]) // 2
    cell[:h, left : left + patch.shape[1]] = patch
    cv2.putText(cell, caption, (3, h + CAPTION_H - 4), FONT, 0.4, WHITE, 1, cv2.LINE_AA)
    return cell


def label_panel(track: int, first: int, last: int, n: int, height: int) -> np.ndarray:
    panel = np.zeros((height, LABEL_W, 3), np.uint8)
    c = colour(track)
    cv2.rectangle(panel, (0, 0), (7, height - 1), c, -1)
    cv2.putText(panel, f"track {track}", (14, 26), FONT, 0.7, c, 2, cv2.LINE_AA)
    cv2.putText(panel, f"frames {first}-{last}", (14, 52), FONT, 0.45, WHITE, 1, cv2.LINE_AA)
    cv2.putText(panel, f"{n} boxes", (14, 72), FONT, 0.45, WHITE, 1, cv2.LINE_AA)
    return panel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path, help="the video the tracks were made from")
    ap.add_argument("tracks", type=Path, help="MOTChallenge file from `reidtrace tracks export`")
    ap.add_argument("out_dir", type=Path, help="folder for the sheets (created)")
    ap.add_argument("--per-row", type=positive_int, default=12, help="crops per track")
    ap.add_argument("--tracks-per-sheet", type=positive_int, default=8)
    ap.add_argument("--height", type=positive_int, default=112, help="crop height in pixels")
    ap.add_argument("--cell-width", type=positive_int, help="default: height / 2")
    ap.add_argument("--pad", type=fraction, default=0.1, help="context around each box")
    ap.add_argument(
        "--tracks",
        dest="only",
        metavar="IDS",
        type=id_list,
        help="comma-separated track ids (default: all)",
    )
    ap.add_argument("--first", type=positive_int, help="ignore boxes before this frame (1-based)")
    ap.add_argument("--last", type=positive_int, help="ignore boxes after this frame (1-based)")
    ap.add_argument("--min-boxes", type=positive_int, default=1, help="skip shorter tracks")
    ap.add_argument("--prefix", default="strips", help="sheet file names: PREFIX_NN.png")
    ap.add_argument("--jpeg-quality", type=positive_int, help="write JPEG at this quality")
    args = ap.parse_args()

    if args.jpeg_quality is not None and args.jpeg_quality > 100:
        ap.error(f"--jpeg-quality must be 1-100, got {args.jpeg_quality}")
    if args.first and args.last and args.first > args.last:
        ap.error(f"--first {args.first} is after --last {args.last}")
    if not args.prefix or any(c in args.prefix for c in "/\\"):
        ap.error(f"--prefix must be a plain file name start, got {args.prefix!r}")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        ap.error(f"{args.out_dir} exists and is not a folder")
    try:
        info = probe(args.video)
        tracks = read_mot(args.tracks)
    except ReidTraceError as e:
        raise SystemExit(f"error: {e}") from None
    if tracks.track_id is None or len(tracks) == 0:
        raise SystemExit(f"error: {args.tracks} holds no tracked boxes (all ids are -1 or empty)")

    frames, ids = tracks.frame_idx, tracks.track_id
    keep = np.ones(len(frames), bool)
    if args.first:
        keep &= frames >= args.first - 1
    if args.last:
        keep &= frames <= args.last - 1
    present = set(np.unique(ids[keep]).tolist())
    if args.only:
        missing = [t for t in args.only if t not in present]
        if missing:
            raise SystemExit(f"error: no boxes for track(s) {missing} in {args.tracks} (in range)")
        wanted = list(dict.fromkeys(args.only))
    else:
        wanted = sorted(present)
    ids = np.where(keep, ids, np.iinfo(np.int64).min)  # boxes out of range belong to no track
    wanted = [t for t in wanted if np.count_nonzero(ids == t) >= args.min_boxes]
    if not wanted:
        raise SystemExit(f"error: no track has {args.min_boxes} or more boxes in range")

    picks = sample_rows(frames, ids, wanted, args.per_row)
    by_frame: dict[int, list[tuple[int, int]]] = {}
    for t, rows in picks.items():
        for r in rows:
            by_frame.setdefault(int(frames[r]), []).append((t, int(r)))
    crops: dict[tuple[int, int], np.ndarray] = {}
    last_needed = max(by_frame)
    for k, frame in read_frames(info):
        for t, r in by_frame.get(k, ()):
            crops[t, r] = crop(frame, tracks.xyxy[r], args.pad, args.height)
        if k >= last_needed:
            break
    if len(crops) < sum(len(r) for r in picks.values()):
        print(
            f"warning: {args.video} ended before frame {last_needed + 1}; "
            "crops past its end are left black",
            file=sys.stderr,
        )

    cell_w = args.cell_width or max(1, args.height // 2)
    row_h = args.height + CAPTION_H
    strips = []
    for t in wanted:
        rows, all_rows = picks[t], np.flatnonzero(ids == t)
        first, last = int(frames[all_rows].min()) + 1, int(frames[all_rows].max()) + 1
        cells = [
            fit_cell(
                crops.get((t, int(r)), np.zeros((args.height, cell_w, 3), np.uint8)),
                cell_w,
                str(frames[r] + 1),
            )
            for r in rows
        ]
        cells += [np.zeros((row_h, cell_w, 3), np.uint8)] * (args.per_row - len(cells))
        strip = np.hstack([label_panel(t, first, last, len(all_rows), row_h), *cells])
        strips.append(np.vstack([strip, np.full((2, strip.shape[1], 3), 90, np.uint8)]))

    args.out_dir.mkdir(parents=True, exist_ok=True)
    ext = ".jpg" if args.jpeg_quality else ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality] if args.jpeg_quality else []
    n = args.tracks_per_sheet
    for s in range(0, len(strips), n):
        out = args.out_dir / f"{args.prefix}_{s // n + 1:02d}{ext}"
        if not cv2.imwrite(str(out), np.vstack(strips[s : s + n]), params):
            raise SystemExit(f"error: could not write {out}")
        print(f"wrote {out} (tracks {', '.join(map(str, wanted[s : s + n]))})")


if __name__ == "__main__":
    main()
