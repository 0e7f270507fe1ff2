"""The shipped defaults against the committed metrics table (tests/metrics/reference.toml).

Each test measures again what the table records and fails when a number moves outside its
tolerance, better or worse, naming the metric, the table's value and the new one; an intended
change regenerates the table (``python benchmarks/reference_metrics.py --write``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metrics import reference


@pytest.fixture(scope="module")
def table() -> dict:
    return reference.read_table()


def test_reference_world_matches_the_table(tmp_path: Path, table: dict) -> None:
    """The bundled ReID model and the default tracker (NanoDet and oracle boxes) on the
    reference world: about 60 s on one core."""
    reference.check(table, reference.measure_world(tmp_path))


def test_pets_tracking_matches_the_table(tmp_path: Path, table: dict) -> None:
    """The default tracker on real footage, PETS frames 1-397: about 15 s on one core."""
    if not reference.pets_available():
        pytest.skip(f"real footage not found at {reference.PETS_VIDEO} (shared test data absent)")
    reference.check(table, reference.measure_pets(tmp_path))


def test_a_moved_metric_fails_in_either_direction(table: dict) -> None:
    """The comparison itself: better and worse both fail, within tolerance passes."""
    tol = table["tolerance"]
    base = {"reid": {"mAP": 80.0, "rank1": 90.0}, "tracking": {"mota": 0.5, "id_switches": 10}}
    ref = {**base, "tolerance": tol}
    assert reference.compare(ref, base) == []
    inside = {"reid": {"mAP": 80.0 + tol["mAP"] * 0.9, "rank1": 90.0}}
    assert reference.compare(ref, inside) == []
    for mota in (0.5 + 2 * tol["mota"], 0.5 - 2 * tol["mota"]):
        (line,) = reference.compare(ref, {"tracking": {"mota": mota, "id_switches": 10}})
        assert line.startswith("tracking.mota: table 0.5, measured") and str(mota) in line
    (line,) = reference.compare(ref, {"tracking": {"mota": 0.5, "id_switches": 13}})
    assert "worse" in line
    (line,) = reference.compare(ref, {"world": {"num_query": 18}})
    assert "not in the table" in line
    with pytest.raises(AssertionError, match=r"reference_metrics\.py --write"):
        reference.check(ref, {"reid": {"mAP": 70.0, "rank1": 90.0}})
