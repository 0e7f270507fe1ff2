"""read_mot / write_mot: round trip, det.txt, short files, broken lines, empty files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reid.data.mot import read_mot, write_mot
from reid.detections import Detections
from reid.errors import ReidTraceError


def _dets() -> Detections:
    return Detections(
        xyxy=np.array([[10, 20, 60, 120], [5.5, 6.25, 15.5, 26.25], [0, 0, 1.5, 3]]),
        confidence=np.array([1.0, 0.0, 1.0]),
        frame_idx=np.array([3, 0, 0]),
        track_id=np.array([1, 7, 2]),
        extra={"class": np.array([1, 1, 7]), "visibility": np.array([0.8125, 1.0, 0.25])},
        camera_id="cam1",
    )


def test_round_trip_and_exact_bytes(tmp_path: Path) -> None:
    path = tmp_path / "seq" / "gt" / "gt.txt"
    write_mot(path, _dets())
    assert path.read_text() == (
        "1,2,0,0,1.5,3,1,7,0.25\n1,7,5.5,6.25,10,20,0,1,1\n4,1,10,20,50,100,1,1,0.8125\n"
    )
    back = read_mot(path, camera_id="cam1")
    assert back.camera_id == "cam1"
    order = [2, 1, 0]  # the file is sorted by frame, then id
    src = _dets()[np.array(order)]
    np.testing.assert_allclose(back.xyxy, src.xyxy)
    np.testing.assert_array_equal(back.frame_idx, src.frame_idx)
    np.testing.assert_array_equal(back.track_id, src.track_id)
    np.testing.assert_allclose(back.confidence, src.confidence)
    assert back.extra["class"].dtype == np.int64 and back.extra["visibility"].dtype == np.float32
    np.testing.assert_array_equal(back.extra["class"], src.extra["class"])
    np.testing.assert_allclose(back.extra["visibility"], src.extra["visibility"])
    write_mot(tmp_path / "again.txt", back)
    assert (tmp_path / "again.txt").read_bytes() == path.read_bytes()


def test_write_defaults_without_ids_or_extra(tmp_path: Path) -> None:
    dets = Detections(xyxy=[[1, 2, 3, 4]], confidence=[0.87654], frame_idx=[0])
    write_mot(tmp_path / "d.txt", dets)
    assert (tmp_path / "d.txt").read_text() == "1,-1,1,2,2,2,0.8765,1,1\n"


def test_reads_det_format(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text(
        "1,-1,794.2,47.5,71.2,174.8,67.5,-1,-1,-1\n"
        "1,-1,164.1,19.6,66.5,163.2,29.4,-1,-1,-1\n"
        "2,-1,875.4,39.9,25.3,145.0,19.6,-1,-1,-1\n"
    )
    dets = read_mot(path)
    assert len(dets) == 3 and dets.track_id is None and dets.extra == {}
    np.testing.assert_array_equal(dets.frame_idx, [0, 0, 1])
    np.testing.assert_allclose(dets.xyxy[0], [794.2, 47.5, 865.4, 222.3], rtol=1e-6)
    np.testing.assert_allclose(dets.confidence, [67.5, 29.4, 19.6], rtol=1e-6)


def test_reads_short_files(tmp_path: Path) -> None:
    six = tmp_path / "six.txt"
    six.write_text("1, 3, 10, 20, 30, 40\n\n2, 3, 11, 21, 30, 40,\n")  # spaces, blank, trailing ,
    dets = read_mot(six)
    np.testing.assert_array_equal(dets.track_id, [3, 3])
    np.testing.assert_array_equal(dets.confidence, [1, 1])
    assert dets.extra == {}
    seven = tmp_path / "seven.txt"
    seven.write_text("1,3,10,20,30,40,0.5\n")
    assert read_mot(seven).confidence[0] == pytest.approx(0.5)
    eight = tmp_path / "eight.txt"
    eight.write_text("1,3,10,20,30,40,1,2\n")
    assert set(read_mot(eight).extra) == {"class"}


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("")
    dets = read_mot(path, camera_id="c2")
    assert len(dets) == 0 and dets.camera_id == "c2"
    write_mot(tmp_path / "out.txt", dets)
    assert (tmp_path / "out.txt").read_bytes() == b""


@pytest.mark.parametrize(
    ("content", "lineno"),
    [
        ("1,1,10,20,30,40,1,1,1\n2,1,10,20,30\n", 2),  # too few fields
        ("1,1,10,20,30,40,1,1,1\n\n3,1,ten,20,30,40,1,1,1\n", 3),  # not a number
        ("0,1,10,20,30,40,1,1,1\n", 1),  # frames are 1-based
        ("1.5,1,10,20,30,40,1,1,1\n", 1),  # frames are integers
    ],
)
def test_broken_lines_name_the_line(tmp_path: Path, content: str, lineno: int) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(content)
    with pytest.raises(ReidTraceError, match=f"line {lineno} ") as err:
        read_mot(path)
    assert content.splitlines()[lineno - 1] in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReidTraceError, match="does not exist"):
        read_mot(tmp_path / "gt.txt")
    with pytest.raises(ReidTraceError, match="is a folder"):
        read_mot(tmp_path)
