"""evaluate-tracing: visit matching on hand-made truth, reading a world's truth, box
identities, and the whole scorer on the tiny rendered world ingested with the oracle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.ingest import IngestConfig, ingest
from indexer.query.evaluate import (
    box_identities,
    evaluate_tracing,
    read_world_truth,
    score_visits,
)
from indexer.settings import IndexSettings, PersonSettings
from reid.detections import Detections
from reid.errors import ReidTraceError
from tests.cli_helpers import run


def test_score_visits_needs_the_camera_and_half_the_time() -> None:
    true = [("cam1", 0.0, 10.0), ("cam2", 20.0, 30.0)]
    # IoU 0.6 in cam1; IoU 4/11 < 0.5 in cam2; a visit in cam3 that never happened
    pred = [("cam1", 2.0, 8.0), ("cam2", 19.0, 24.0), ("cam3", 0.0, 5.0)]
    assert score_visits(pred, true) == 1
    # exactly 0.5 counts; the wrong camera never does
    assert score_visits([("cam1", 0.0, 5.0)], true) == 1
    assert score_visits([("cam2", 0.0, 10.0)], true) == 0
    # one to one: two predicted visits cannot both match one true visit
    assert score_visits([("cam1", 0.0, 10.0), ("cam1", 1.0, 9.0)], true) == 1


def write_truth(root: Path) -> None:
    """A two-identity world truth: id 1 (test) cam1 then cam2, id 2 (train)."""
    root.mkdir()
    (root / "cameras.json").write_text(json.dumps({"cameras": []}))
    (root / "trajectories.json").write_text(
        json.dumps(
            {
                "1": [
                    {"camera": "cam1", "enter": "2024-05-01T12:00:00.000Z",
                     "leave": "2024-05-01T12:00:10.000Z", "frames": 101},
                    {"camera": "cam2", "enter": "2024-05-01T12:00:30.000Z",
                     "leave": "2024-05-01T12:00:40.000Z", "frames": 101},
                ],
                "2": [{"camera": "cam1", "enter": "2024-05-01T12:00:00.000Z",
                       "leave": "2024-05-01T12:00:05.000Z", "frames": 51}],
            }
        )
    )  # fmt: skip
    (root / "identities.csv").write_text(
        "id,role,group,split,cameras,twin_of,twin_detail,height_m,description\n"
        "1,walker,-1,test,cam1 cam2,-1,,1.7,a\n2,walker,-1,train,cam1,-1,,1.7,b\n"
        "3,walker,-1,test,,-1,,1.7,never seen\n"
    )
    q = root / "market" / "query"
    q.mkdir(parents=True)
    (q / "0001_c2s1_000305_01.jpg").write_bytes(b"")
    (q / "0001_c1s1_000050_01.jpg").write_bytes(b"")


def test_read_world_truth(tmp_path: Path) -> None:
    write_truth(tmp_path / "w")
    truth = read_world_truth(tmp_path / "w")
    assert truth.test_ids == [1]  # 2 is train, 3 was never seen
    assert truth.queries == {1: ("cam1", 50)}  # the first query crop in name order
    assert [v[0] for v in truth.trajectories[1]] == ["cam1", "cam2"]
    assert truth.trajectories[1][1][2] - truth.trajectories[1][1][1] == pytest.approx(10.0)
    with pytest.raises(ReidTraceError, match="not a synthetic world"):
        read_world_truth(tmp_path)


def test_box_identities_vote_per_track() -> None:
    box = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], np.float64)
    gt = Detections(
        xyxy=np.concatenate([box, box]),
        confidence=np.ones(4),
        frame_idx=np.array([0, 0, 1, 1]),
        track_id=np.array([7, 8, 7, 8]),
    )
    # track 100 follows 7 then jumps to 8; track 101 sits between both (IoU < 0.5)
    hyp = Detections(xyxy=np.array([[0, 0, 10, 20], [50, 0, 60, 20], [25, 0, 35, 20]], float),
                     confidence=np.ones(3), frame_idx=np.array([0, 1, 1]),
                     track_id=np.array([100, 100, 101]))  # fmt: skip
    got = box_identities(gt, hyp)
    assert dict(got[100]) == {7: 1, 8: 1} and 101 not in got


def test_evaluate_tracing_and_a_photo_trace_on_the_tiny_world(
    tiny_world, tiny_embedder, tmp_path: Path, monkeypatch, capsys
) -> None:
    """Oracle boxes, 2 overlapping cameras, 8 s: every score is a fraction, the counts add up;
    and `reidtrace trace CROP` finds the crop's person through the photo search."""
    world, _ = tiny_world
    db_url = f"sqlite:///{tmp_path / 'reidtrace.db'}"
    report = ingest(
        [world],
        db_url=db_url,
        index_path=tmp_path / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(detector="oracle", embedder_path=str(tiny_embedder), chunk_frames=40),
    )
    assert report.ok
    out = evaluate_tracing(world, db_url=db_url, cfg=PersonSettings())
    assert out["identities"] == len(read_world_truth(world).test_ids) > 0
    assert out["visits_matched"] <= min(out["visits_true"], out["visits_predicted"])
    assert out["trajectory_precision"] == pytest.approx(
        out["visits_matched"] / out["visits_predicted"]
    )
    # oracle boxes, and the two cameras overlap: the ground plane alone links most people
    assert out["trajectory_recall"] >= 0.6 and out["trajectory_precision"] >= 0.6
    for key in ("contact_precision", "contact_recall"):
        assert 0.0 <= out[key] <= 1.0
    assert out["exposure_mae_s"] is None or out["exposure_mae_s"] >= 0
    # the CLI on the same store: trace a query crop by its pixels
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path))
    monkeypatch.setenv("REIDTRACE_REID_MODEL", str(tiny_embedder))
    crop = sorted((world / "market" / "query").glob("*.jpg"))[0]
    code, text, err = run(["trace", str(crop), "--crop", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(text)
    assert doc["subject"]["kind"] == "photo" and doc["subject"]["query"] == str(crop)
    assert doc["subject"]["track_ids"] and 0 < doc["subject"]["score"] <= 1.0001
    code, text, _ = run(["evaluate-tracing", "--world", str(world), "--json"], capsys)
    assert code == 0 and json.loads(text)["visits_true"] == out["visits_true"]
