"""Camera zones: the foot-point test, include/exclude rules and the two ways to write them."""

import json

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.zones import Zones, foot_points, parse_zones

SQUARE = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
# an L: the square minus its top-right quarter (a concave polygon)
ELL = ((0.0, 0.0), (5.0, 0.0), (5.0, 5.0), (10.0, 5.0), (10.0, 10.0), (0.0, 10.0))


def test_point_in_polygon_with_edges_inside_and_a_concave_corner() -> None:
    pts = np.array([[5, 5], [0, 5], [10, 10], [11, 5], [-0.1, 3], [7, 2], [7, 8], [2, 2]])
    assert Zones(include=(SQUARE,)).contains(pts).tolist() == [1, 1, 1, 0, 0, 1, 1, 1]
    assert Zones(include=(ELL,)).contains(pts).tolist() == [1, 1, 1, 0, 0, 0, 1, 1]


def test_include_and_exclude_combine() -> None:
    right_half = ((5.0, 0.0), (10.0, 0.0), (10.0, 10.0), (5.0, 10.0))
    z = Zones(include=(SQUARE,), exclude=(right_half,))
    pts = np.array([[2, 2], [7, 2], [20, 2]])
    assert z.contains(pts).tolist() == [True, False, False]
    only_exclude = Zones(exclude=(right_half,))
    assert only_exclude.contains(pts).tolist() == [True, False, True]
    assert Zones().contains(pts).all() and not Zones()


def test_keep_uses_the_foot_point() -> None:
    # box 0 stands inside (its head is far outside), box 1 stands outside (its head is inside)
    xyxy = np.array([[2, -50, 4, 8], [2, 5, 4, 30]], np.float32)
    dets = Detections(xyxy, np.ones(2, np.float32), np.zeros(2, np.int64))
    assert foot_points(xyxy).tolist() == [[3, 8], [3, 30]]
    kept = Zones(include=(SQUARE,)).keep(dets)
    assert kept.xyxy.tolist() == [[2, -50, 4, 8]]


def test_text_json_and_file_forms_agree(tmp_path) -> None:
    z = parse_zones(["include:0,0 10,0 10,10 0,10", "exclude: 5,0 10,0 10,10"])
    assert z.include == (SQUARE,) and len(z.exclude) == 1
    assert Zones.from_json(json.loads(json.dumps(z.as_json()))) == z
    f = tmp_path / "zones.json"
    f.write_text(json.dumps(z.as_json()))
    assert parse_zones([str(f)]) == z
    assert z.scaled(2).include[0][2] == (20.0, 20.0)


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("0,0 1,0 1,1", "must start with include: or exclude:"),
        ("keep:0,0 1,0 1,1", "must start with include: or exclude:"),
        ("include:0,0 1,0", "at least 3"),
        ("include:0,0 1;0 1,1", "is not x,y"),
        ("exclude:0,0 a,0 1,1", "bad zone"),
        ("missing.json", "cannot read the zone file"),
    ],
)
def test_bad_zones_say_how_to_write_one(spec, needle) -> None:
    with pytest.raises(ReidTraceError) as err:
        parse_zones([spec])
    assert needle in err.value.message and "include:x,y" in (err.value.hint or "")


def test_bad_json_zones() -> None:
    for bad in ([1, 2], {"inside": []}, {"include": [[[0, 0], [1]]]}):
        with pytest.raises(ReidTraceError):
            Zones.from_json(bad)
