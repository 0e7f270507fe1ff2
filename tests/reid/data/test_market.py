"""read_market on tiny Market-1501-format folders built here, good and broken."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.data.market import (
    MarketDataset,
    market_name,
    parse_market_name,
    read_market,
)
from reid.errors import ReidTraceError

_IMG = np.full((16, 8, 3), 127, np.uint8)

TRAIN = [
    "0002_c1s1_000451_03.jpg",
    "0002_c2s1_000301_01.jpg",
    "0007_c3s3_012345_02.jpg",
]
QUERY = ["0002_c1s1_000551_01.jpg", "0007_c2s1_000101_01.jpg"]
GALLERY = [
    "-1_c1s1_000401_03.jpg",  # junk
    "0000_c2s1_000001_01.jpg",  # distractor
    "0002_c3s2_000101_02.jpg",
    "0007_c2s1_000201_01.jpg",
]


def _write(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        assert cv2.imwrite(str(folder / name), _IMG)


def _make_market(root: Path) -> Path:
    _write(root / "bounding_box_train", TRAIN)
    _write(root / "query", QUERY)
    _write(root / "bounding_box_test", GALLERY)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0\1")  # as in the real archive
    (root / "gt_bbox").mkdir()
    return root


def test_reads_counts_ids_cameras(tmp_path: Path) -> None:
    ds = read_market(_make_market(tmp_path))
    assert isinstance(ds, MarketDataset) and ds.root == tmp_path
    assert [im.path.name for im in ds.train] == sorted(TRAIN)
    assert len(ds.query) == 2 and len(ds.gallery) == 4
    assert ds.num_train_pids == 2
    pids, cams = ds.arrays("gallery")
    assert pids.dtype == np.int64 and list(pids) == [-1, 0, 2, 7]  # sorted by name
    assert list(cams) == [1, 2, 3, 2]
    im = ds.train[2]
    assert (im.pid, im.camid, im.seq, im.frame, im.box) == (7, 3, 3, 12345, 2)
    assert im.path == tmp_path / "bounding_box_train" / "0007_c3s3_012345_02.jpg"
    with pytest.raises(ReidTraceError, match="unknown Market split"):
        ds.arrays("test")


def test_name_round_trip() -> None:
    for labels in [(-1, 1, 1, 401, 3), (0, 2, 1, 1, 1), (1501, 6, 6, 999999, 99), (7, 12, 0, 0, 0)]:
        name = market_name(*labels)
        assert parse_market_name(name) == labels
    assert market_name(-1, 1, 1, 401, 3) == "-1_c1s1_000401_03.jpg"
    assert market_name(2, 1, 1, 451, 3, ext="png") == "0002_c1s1_000451_03.png"
    assert parse_market_name("/x/y/0002_C1S1_000451_03.JPG") == (2, 1, 1, 451, 3)
    with pytest.raises(ReidTraceError, match="not a Market-1501 file name"):
        parse_market_name("2_c1s1_000451_03.jpg")
    with pytest.raises(ValueError, match="pid"):
        market_name(10000, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="camid"):
        market_name(1, 0, 1, 1, 1)


def test_nested_single_subfolder_is_accepted(tmp_path: Path) -> None:
    inner = _make_market(tmp_path / "Market-1501-v15.09.15")
    (tmp_path / "Market-1501-v15.09.15.zip").write_bytes(b"zip")
    ds = read_market(tmp_path)
    assert ds.root == inner and len(ds.gallery) == 4


def test_missing_root_and_file_root(tmp_path: Path) -> None:
    with pytest.raises(ReidTraceError, match="does not exist"):
        read_market(tmp_path / "nope")
    f = tmp_path / "market.zip"
    f.write_bytes(b"zip")
    with pytest.raises(ReidTraceError, match="is a file"):
        read_market(f)


def test_missing_query_names_it_and_lists_contents(tmp_path: Path) -> None:
    _write(tmp_path / "bounding_box_train", TRAIN)
    _write(tmp_path / "bounding_box_test", GALLERY)
    with pytest.raises(ReidTraceError) as err:
        read_market(tmp_path)
    msg = str(err.value)
    assert "lacks query/" in msg and "bounding_box_test/" not in msg.split("contains")[0]
    assert "bounding_box_train/" in msg.split("contains")[1]


def test_train_optional_for_evaluation(tmp_path: Path) -> None:
    _write(tmp_path / "query", QUERY)
    _write(tmp_path / "bounding_box_test", GALLERY)
    with pytest.raises(ReidTraceError, match="lacks bounding_box_train/"):
        read_market(tmp_path)
    ds = read_market(tmp_path, require_train=False)
    assert ds.train == [] and ds.num_train_pids == 0 and len(ds.query) == 2


def test_empty_split(tmp_path: Path) -> None:
    _make_market(tmp_path)
    for p in (tmp_path / "query").iterdir():
        p.unlink()
    (tmp_path / "query" / "Thumbs.db").write_bytes(b"")
    with pytest.raises(ReidTraceError, match="holds no images"):
        read_market(tmp_path)


def test_bad_names_are_reported(tmp_path: Path) -> None:
    _make_market(tmp_path)
    _write(tmp_path / "bounding_box_test", ["person1.jpg", "0002_c1_000101_01.jpg"])
    (tmp_path / "bounding_box_test" / "notes.txt").write_text("ignored")
    (tmp_path / "bounding_box_test" / "._0002_c1s1_000451_03.jpg").write_bytes(b"")  # macOS
    with pytest.raises(ReidTraceError) as err:
        read_market(tmp_path)
    assert "2 image(s)" in str(err.value) and "person1.jpg" in str(err.value)
    assert err.value.hint is not None and "0002_c1s1_000451_03.jpg" in err.value.hint
