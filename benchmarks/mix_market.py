"""Merge the training splits of several Market-format folders into one, identities kept apart.

Usage::

    python benchmarks/mix_market.py FIRST_MARKET OTHER_MARKET [...] --out DIR

``DIR/bounding_box_train/`` links every training image of every folder; the identities of the
k-th folder are offset by ``k * 2000`` so two worlds' person 12 stay two people (Market names
hold four-digit identities, so each folder may hold identities below 2000 and at most five
folders fit). ``query/`` and ``bounding_box_test/`` link the first folder's, so the result
reads as a Market folder; train on it, never evaluate on it. Symbolic links, no copies: the
sources must stay in place.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reid.data.market import read_market

OFFSET = 2000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if len(args.folders) > 5:
        raise SystemExit("error: at most 5 folders (four-digit identities, offset 2000 each)")
    if args.out.exists():
        raise SystemExit(f"error: {args.out} exists; pass a new folder")
    train = args.out / "bounding_box_train"
    train.mkdir(parents=True)
    counts = []
    for k, folder in enumerate(args.folders):
        data = read_market(folder)
        if k == 0:
            (args.out / "query").symlink_to(data.root.resolve() / "query")
            (args.out / "bounding_box_test").symlink_to(data.root.resolve() / "bounding_box_test")
        ids = set()
        for im in data.train:
            if im.pid <= 0:  # distractors and junk carry no identity to train on
                continue
            if im.pid >= OFFSET:
                raise SystemExit(f"error: {folder} has identity {im.pid} >= {OFFSET}")
            name = Path(im.path).name
            new = f"{im.pid + k * OFFSET:04d}{name[4:]}"
            (train / new).symlink_to(Path(im.path).resolve())
            ids.add(im.pid)
        counts.append({"folder": str(folder), "images": len(data.train), "identities": len(ids)})
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
