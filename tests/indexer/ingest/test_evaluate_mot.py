"""``evaluate-tracking --mot`` on a tiny MOTChallenge folder drawn here: two people walking on
a textured floor, truth drawn at twice the footage's size (so the scale comes from seqinfo.ini),
boxes from the oracle detector (the frame-sized truth), so the scores check the plumbing."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.ingest import IngestConfig
from indexer.ingest.evaluate import evaluate_mot, parse_frames, read_sequence
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.db import make_engine, make_session_factory
from reid.data.mot import write_mot
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.zones import Zones, foot_points, parse_zones
from tests.cli_helpers import one_line_error, run

FRAMES, W, H = 20, 160, 120


def _truth() -> Detections:
    """Person 1 walks right along the bottom, person 2 walks left higher up (foot y = 50)."""
    rows = []
    for t in range(FRAMES):
        rows.append((t, 1, 10 + 4 * t, 60, 22, 50))
        rows.append((t, 2, 130 - 4 * t, 10, 20, 40))
    a = np.array(rows, float)
    xyxy = np.column_stack([a[:, 2], a[:, 3], a[:, 2] + a[:, 4], a[:, 3] + a[:, 5]])
    return Detections(xyxy, np.ones(len(a)), a[:, 0].astype(np.int64), a[:, 1].astype(np.int64))


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mot") / "TINY-01"
    (root / "img1").mkdir(parents=True)
    truth = _truth()
    rng = np.random.default_rng(0)
    floor = rng.integers(60, 120, (H, W, 3), dtype=np.uint8)
    for t in range(FRAMES):
        frame = floor.copy()
        boxes = truth.xyxy[truth.frame_idx == t]
        for box, colour in zip(boxes, [(0, 0, 220), (220, 80, 0)], strict=True):
            x1, y1, x2, y2 = box.astype(int)
            cv2.rectangle(frame, (x1, y1), (x2, y2), colour, -1)
        cv2.imwrite(str(root / "img1" / f"{t + 1:06d}.png"), frame)
    big = Detections(truth.xyxy * 2, truth.confidence, truth.frame_idx, truth.track_id)
    write_mot(root / "gt" / "gt.txt", big)  # drawn at 320x240, as seqinfo says
    write_mot(root.parent / "oracle.txt", truth)  # the frame-sized boxes the oracle detects
    (root / "seqinfo.ini").write_text(
        f"[Sequence]\nname=TINY-01\nimDir=img1\nframeRate=10\nseqLength={FRAMES}\n"
        f"imWidth={2 * W}\nimHeight={2 * H}\nimExt=.png\n"
    )
    return root


def _evaluate(seq: Path, home: Path, embedder: Path, **kw) -> dict:
    cfg = IngestConfig(
        detector="oracle",
        detector_options={"gt_path": seq.parent / "oracle.txt"},
        embedder_path=str(embedder),
    )
    return evaluate_mot(
        [read_sequence(seq)],
        db_url=f"sqlite:///{home / 'db.sqlite'}",
        index_path=home / "index.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        **kw,
    )


def test_scores_a_sequence_and_ingests_it_once(sequence, tmp_path, tiny_embedder) -> None:
    out = _evaluate(sequence, tmp_path, tiny_embedder)
    s = out["sequences"]["TINY-01"]
    assert s["gt_scale"] == 0.5 and s["ingest"] == "done"
    assert s["gt_boxes"] == 2 * FRAMES
    assert s["mota"] == 1.0 and s["idf1"] == 1.0 and s["id_switches"] == 0
    assert s["hota"] > 0.95 and s["recall"] == 1.0 and s["precision"] == 1.0
    assert out["pooled"]["mota"] == 1.0 and out["pooled"]["hota"] == pytest.approx(s["hota"])
    again = _evaluate(sequence, tmp_path, tiny_embedder, frames=parse_frames("1:10"))
    assert again["sequences"]["TINY-01"]["ingest"] == "skipped"
    assert again["sequences"]["TINY-01"]["gt_boxes"] == 2 * 10


def test_zones_drop_boxes_before_tracking_and_from_scoring(sequence, tmp_path, tiny_embedder):
    # everything whose foot point is above y = 80 (person 2) is outside
    zones = Zones(exclude=(((-1e3, -1e3), (1e3, -1e3), (1e3, 80.0), (-1e3, 80.0)),))
    out = _evaluate(sequence, tmp_path, tiny_embedder, zones=zones)
    s = out["sequences"]["TINY-01"]
    assert s["gt_boxes"] == FRAMES and s["mota"] == 1.0 and s["false_positives"] == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with make_session_factory(engine)() as session:
        stored = repo.detections_for_video(session=session, video_id=1)
    engine.dispose()
    assert len(stored) == FRAMES and (foot_points(stored.xyxy)[:, 1] > 80).all()
    assert len(np.unique(stored.track_id)) == 1


def test_score_zones_apply_to_scoring_only(sequence, tmp_path, tiny_embedder) -> None:
    score_zones = parse_zones(["include:0,80 160,80 160,120 0,120"])
    s = _evaluate(sequence, tmp_path, tiny_embedder, score_zones=score_zones)["sequences"]
    assert s["TINY-01"]["gt_boxes"] == FRAMES and s["TINY-01"]["mota"] == 1.0
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with make_session_factory(engine)() as session:
        assert len(repo.detections_for_video(session=session, video_id=1)) == 2 * FRAMES
    engine.dispose()


def test_bad_sequences_and_ranges(tmp_path, sequence) -> None:
    with pytest.raises(ReidTraceError, match="no ground truth"):
        read_sequence(tmp_path)
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "gt.txt").write_text("1,1,0,0,5,5,1,1,1\n")
    with pytest.raises(ReidTraceError, match="give the footage with --video"):
        read_sequence(tmp_path)
    assert read_sequence(tmp_path, video=sequence / "img1").footage == sequence / "img1"
    for bad in ("5", "0:3", "9:2", "a:b"):
        with pytest.raises(ReidTraceError, match="bad frame range"):
            parse_frames(bad)
    assert parse_frames("3:") == (3, None) and parse_frames(None) is None


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--frames", "10"], "bad frame range"),
        (["--zone", "include:0,0 1,1"], "at least 3"),
        (["--zone", "inside:0,0 1,0 1,1"], "must start with include"),
        (["--world", "x"], "either --world or --mot"),
        (["--detector-input", "480x650"], "multiples of 32"),
        (["--detector-input", "640"], "multiples of 32"),
        (["--min-track-score", "1.5"], "min_track_score"),
    ],
)
def test_cli_errors_are_one_line(extra, needle, sequence, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    code, _, err = run(["evaluate-tracking", "--mot", str(sequence), *extra], capsys)
    one_line_error(code, err, needle)


def test_cli_missing_truth_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    code, _, err = run(["evaluate-tracking", "--mot", str(tmp_path)], capsys)
    one_line_error(code, err, "no ground truth")
    code, _, err = run(["evaluate-tracking"], capsys)
    one_line_error(code, err, "either --world or --mot")


def test_cameras_json_zones_and_the_cli_override(tmp_path) -> None:
    import json

    from indexer.ingest.sources import discover_sources

    zone = {"exclude": [[[0, 0], [480, 0], [480, 100], [0, 100]]]}
    cams = {
        "cameras": [
            {"name": "cam1", "video": "cam1.mp4", "zones": zone},
            {"name": "cam2", "video": "cam2.mp4"},
        ]
    }
    (tmp_path / "cameras.json").write_text(json.dumps(cams))
    one, two = discover_sources([tmp_path])
    assert one.zones == Zones.from_json(zone) and not two.zones
    given = parse_zones(["include:0,0 9,0 9,9"])
    assert all(s.zones == given for s in discover_sources([tmp_path], zones=given))
    cams["cameras"][0]["zones"] = {"exclude": [[[0, 0], [1, 1]]]}
    (tmp_path / "cameras.json").write_text(json.dumps(cams))
    with pytest.raises(ReidTraceError, match="at least 3"):
        discover_sources([tmp_path])


def test_world_zones_apply_to_ingest_and_evaluation(sequence, tmp_path, tiny_embedder) -> None:
    """A one-camera world whose cameras.json excludes person 2 (feet above y = 80)."""
    import json

    from indexer.ingest import ingest
    from indexer.ingest.evaluate import evaluate_tracking

    zone = {"exclude": [[[-1000, -1000], [1000, -1000], [1000, 80], [-1000, 80]]]}
    cam = {
        "name": "cam1",
        "video": str(sequence / "img1"),
        "gt": str(sequence.parent / "oracle.txt"),
        "fps": 10,
        "start_time": "2024-01-01T00:00:00Z",
        "zones": zone,
    }
    (tmp_path / "cameras.json").write_text(json.dumps({"cameras": [cam]}))
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    cfg = IngestConfig(detector="oracle", embedder_path=str(tiny_embedder))
    report = ingest(
        [tmp_path],
        db_url=db,
        index_path=tmp_path / "i.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
    )
    assert report.ok
    s = evaluate_tracking(tmp_path, db_url=db)["per_camera"]["cam1"]
    assert s["gt_boxes"] == FRAMES and s["false_positives"] == 0 and s["mota"] == 1.0


def test_sequences_pool_and_names_must_differ(sequence, tmp_path, tiny_embedder) -> None:
    import shutil

    other = tmp_path / "TINY-02"
    shutil.copytree(sequence, other)
    ini = other / "seqinfo.ini"
    ini.write_text(ini.read_text().replace("name=TINY-01", "name=TINY-02"))
    cfg = IngestConfig(
        detector="oracle",
        detector_options={"gt_path": sequence.parent / "oracle.txt"},
        embedder_path=str(tiny_embedder),
    )
    kw = dict(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        index_path=tmp_path / "i.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
    )
    seqs = [read_sequence(sequence), read_sequence(other)]
    out = evaluate_mot(seqs, frames=(1, 5), **kw)
    assert set(out["sequences"]) == {"TINY-01", "TINY-02"}
    assert out["pooled"]["gt_boxes"] == 2 * 2 * 5 and out["pooled"]["mota"] == 1.0
    with pytest.raises(ReidTraceError, match="same name"):
        evaluate_mot([seqs[0], seqs[0]], **kw)


def test_a_frame_folder_is_ingested_at_its_seqinfo_frame_rate(sequence, tmp_path, tiny_embedder):
    import shutil

    from sqlalchemy import select

    from indexer.store.models import Video

    fast = tmp_path / "TINY-25"
    shutil.copytree(sequence, fast)
    ini = (fast / "seqinfo.ini").read_text().replace("frameRate=10", "frameRate=25")
    (fast / "seqinfo.ini").write_text(ini.replace("name=TINY-01", "name=TINY-25"))
    (fast.parent / "oracle.txt").write_bytes((sequence.parent / "oracle.txt").read_bytes())
    assert read_sequence(sequence).fps == 10 and read_sequence(fast).fps == 25
    out = _evaluate(fast, tmp_path, tiny_embedder)
    assert out["sequences"]["TINY-25"]["mota"] == 1.0
    assert any(n.startswith("tracker:") for n in out["notes"])
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with make_session_factory(engine)() as session:
        assert session.scalars(select(Video.fps)).all() == [25.0]
    engine.dispose()
    (fast / "seqinfo.ini").write_text(ini.replace("frameRate=25", "frameRate=fast"))
    with pytest.raises(ReidTraceError, match="frameRate is not a number"):
        read_sequence(fast)


def test_cli_tracking_knobs_reach_the_config(sequence, tmp_path, monkeypatch, capsys) -> None:
    """``--detector`` and the tracker knobs are the ingest settings the user gave (they win
    over the detector's profile); with ``--world`` they are refused in one line."""
    import indexer.ingest.evaluate as evaluate

    seen = {}

    def fake(seqs, *, cfg, **kw):
        seen["cfg"] = cfg
        return {"sequences": {}, "pooled": {}, "detector": cfg.detector, "notes": []}

    monkeypatch.setattr(evaluate, "evaluate_mot", fake)
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    args = ["--detector", "hog", "--low-score", "0", "--max-gap", "4", "--stitch", "--json",
            "--min-track-score", "0.45", "--detector-input", "480x640"]  # fmt: skip
    code, _, _ = run(["evaluate-tracking", "--mot", str(sequence), *args], capsys)
    cfg = seen["cfg"]
    assert code == 0 and cfg.detector == "hog" and cfg.low_score is None
    assert cfg.tracker.max_gap == 4 and cfg.tracker.stitch and cfg.tracker.min_track_score == 0.45
    assert {"low_score", "max_gap", "stitch", "min_track_score"} <= cfg.explicit
    assert cfg.detector_options == {"input_size": (480, 640)}
    code, _, err = run(
        ["evaluate-tracking", "--world", str(tmp_path), "--low-score", "0.2"], capsys
    )
    one_line_error(code, err, "goes with --mot")
