"""Ingestion end to end on a tiny rendered world, with the oracle detector (fast, exact boxes)
and a one-node ONNX embedder, so these tests exercise the pipeline, not the models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from indexer.index import verify_index
from indexer.ingest import IngestConfig, ingest
from indexer.ingest.evaluate import evaluate_tracking, export_tracks
from indexer.settings import IndexSettings
from indexer.store.db import make_engine, make_session_factory
from indexer.store.models import Detection, Sighting, Video
from reid.data.mot import read_mot
from reid.errors import ReidTraceError


def run(world: Path, home: Path, embedder: Path, **kw) -> dict:
    cfg = IngestConfig(detector="oracle", embedder_path=str(embedder), chunk_frames=20)
    report = ingest(
        [world],
        db_url=f"sqlite:///{home / 'db.sqlite'}",
        index_path=home / "index.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        **kw,
    )
    return report.as_dict()


def rows(home: Path, db: str = "db.sqlite") -> tuple[list[tuple], list[tuple]]:
    """Every detection (video hash, frame, box) and sighting (video hash, frame), sorted."""
    if not (home / db).exists():
        db = "reidtrace.db"
    engine = make_engine(f"sqlite:///{home / db}")
    with make_session_factory(engine)() as s:
        dets = s.execute(
            select(
                Video.content_hash,
                Detection.frame_idx,
                Detection.x1,
                Detection.y1,
                Detection.x2,
                Detection.y2,
            ).join(Video, Video.id == Detection.video_id)
        ).all()
        sights = s.execute(
            select(Video.content_hash, Detection.frame_idx)
            .select_from(Sighting)
            .join(Detection, Detection.id == Sighting.detection_id)
            .join(Video, Video.id == Detection.video_id)
        ).all()
    engine.dispose()
    return sorted(map(tuple, dets)), sorted(map(tuple, sights))


@pytest.fixture
def world(tiny_world, tmp_path) -> Path:
    root, _ = tiny_world
    dst = tmp_path / "world"
    shutil.copytree(root, dst)
    return dst


def test_ingest_scores_and_is_idempotent(world, tmp_path, tiny_embedder) -> None:
    home = tmp_path / "home"
    home.mkdir()
    first = run(world, home, tiny_embedder)
    assert first["ok"] and first["totals"]["done"] == 2
    assert all("detector: oracle (chosen)" in v["notes"] for v in first["videos"])
    assert first["totals"]["detections"] > 0 and first["totals"]["sightings"] > 0
    engine = make_engine(f"sqlite:///{home / 'db.sqlite'}")
    assert verify_index(engine, home / "index.faiss").ok
    scores = evaluate_tracking(world, db_url=f"sqlite:///{home / 'db.sqlite'}")
    assert scores["idf1"] >= 0.8 and scores["mota"] >= 0.8  # oracle boxes: tracking alone
    before = rows(home)
    second = run(world, home, tiny_embedder)
    assert [v["status"] for v in second["videos"]] == ["skipped", "skipped"]
    assert rows(home) == before
    # MOT export round trip: 1-based frames, the stored boxes
    out = export_tracks("cam1", tmp_path / "cam1.txt", db_url=f"sqlite:///{home / 'db.sqlite'}")
    exported = read_mot(out)
    with make_session_factory(engine)() as s:
        n = s.scalar(select(func.count(Detection.id)).join(Video).where(Video.path.like("%cam1%")))
    assert len(exported) == n


def test_bad_files_fail_alone(tmp_path, tiny_world, tiny_embedder) -> None:
    root, _ = tiny_world
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(root / "cam1" / "video.mp4", folder / "good.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "junk.avi").write_bytes(b"definitely not a video" * 100)
    data = (root / "cam2" / "video.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    home = tmp_path / "home"
    home.mkdir()
    cfg = IngestConfig(detector="hog", embedder_path=str(tiny_embedder))
    report = ingest(
        [folder],
        db_url=f"sqlite:///{home / 'db.sqlite'}",
        index_path=home / "i.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        start="2026-01-01T00:00:00Z",
    ).as_dict()
    status = {Path(v["path"]).name: (v["status"], v["error"]) for v in report["videos"]}
    assert status["good.mp4"][0] == "done"
    assert status["empty.mp4"][0] == "failed" and "empty" in status["empty.mp4"][1]
    assert status["junk.avi"][0] == "failed" and status["junk.avi"][1]
    assert status["truncated.mp4"][0] in ("done", "failed")  # what is readable, or a reason
    assert not report["ok"]


def test_a_detector_that_cannot_be_built_stops_the_run_before_any_video(
    tmp_path, tiny_world, tiny_embedder
) -> None:
    root, _ = tiny_world
    home = tmp_path / "home"
    home.mkdir()
    cfg = IngestConfig(
        detector="nanodet", detector_options={"treshold": 0.5}, embedder_path=str(tiny_embedder)
    )
    with pytest.raises(ReidTraceError, match="unknown options") as err:
        ingest(
            [root / "cam1" / "video.mp4"],
            db_url=f"sqlite:///{home / 'db.sqlite'}",
            index_path=home / "i.faiss",
            index_settings=IndexSettings(),
            cfg=cfg,
            start="2026-01-01T00:00:00Z",
        )
    assert "score_threshold" in (err.value.hint or "")
    assert not (home / "db.sqlite").exists() and not (home / "i.faiss").exists()


def test_process_pool_gives_the_same_rows(world, tmp_path, tiny_embedder) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    run(world, a, tiny_embedder, workers=1)
    run(world, b, tiny_embedder, workers=2)
    assert rows(a) == rows(b)


def test_ray_gives_the_same_rows(world, tmp_path, tiny_embedder) -> None:
    pytest.importorskip("ray")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    run(world, a, tiny_embedder, workers=1)
    run(world, b, tiny_embedder, ray_address="auto-local")
    assert rows(a) == rows(b)


def test_postgresql_path(world, tmp_path, tiny_embedder) -> None:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect("host=127.0.0.1 dbname=postgres user=postgres", autocommit=True)
    except psycopg.OperationalError as err:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {err}")
    name = f"reidtrace_ingest_{np.random.default_rng().integers(1 << 30)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        cfg = IngestConfig(detector="oracle", embedder_path=str(tiny_embedder), chunk_frames=20)
        report = ingest(
            [world],
            db_url=url,
            index_path=tmp_path / "pg.faiss",
            index_settings=IndexSettings(),
            cfg=cfg,
        ).as_dict()
        assert report["ok"] and report["totals"]["sightings"] > 0
        assert verify_index(make_engine(url), tmp_path / "pg.faiss").ok
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_market_folder_as_a_gallery(tmp_path, tiny_embedder) -> None:
    from reid.synth.crops import CropsConfig, generate_crops

    generate_crops(
        tmp_path / "m", CropsConfig(seed=0, cameras=3, identities=6, images_per_camera=3), workers=1
    )
    home = tmp_path / "home"
    home.mkdir()
    cfg = IngestConfig(embedder_path=str(tiny_embedder))
    kw = dict(
        db_url=f"sqlite:///{home / 'db.sqlite'}",
        index_path=home / "i.faiss",
        index_settings=IndexSettings(),
        cfg=cfg,
        market_split="gallery",
    )
    report = ingest([tmp_path / "m" / "market"], **kw).as_dict()
    from reid.data.market import read_market

    gallery = [m for m in read_market(tmp_path / "m" / "market").gallery if m.pid != -1]
    assert report["ok"] and report["totals"]["sightings"] == len(gallery)
    engine = make_engine(f"sqlite:///{home / 'db.sqlite'}")
    assert verify_index(engine, home / "i.faiss").ok
    with make_session_factory(engine)() as s:
        assert set(s.scalars(select(Video.kind))) == {"crops"}
    again = ingest([tmp_path / "m" / "market"], **kw).as_dict()
    assert {v["status"] for v in again["videos"]} == {"skipped"}


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"low_score": 1.5}, "low_score"),
        ({"low_score": -0.1}, "low_score"),
        ({"appearance": "colour"}, "appearance"),
        ({"detect_stride": 0}, "detect_stride"),
        ({"max_gap": -1}, "max_gap"),
        ({"max_gap": 1.5}, "max_gap"),
        ({"overlap_cover": 1.5}, "overlap_cover"),
        ({"overlap_cover": -0.1}, "overlap_cover"),
    ],
)
def test_config_mistakes_are_user_errors(kw: dict, needle: str) -> None:
    with pytest.raises(ReidTraceError, match=needle):
        IngestConfig.from_settings(detector="hog", **kw).validate()


def test_two_stage_lowers_the_detectors_bar_and_raises_the_trackers(tiny_world) -> None:
    from indexer.ingest.sources import discover_sources
    from indexer.ingest.stages import Stages

    source = discover_sources([tiny_world[0]])[0]
    from reid.track.config import PROFILES

    # the bar is NanoDet's profile's (reid.track.config.PROFILES) unless the user gives one
    parts = Stages(IngestConfig(detector="nanodet"), source)
    bar = PROFILES["nanodet"]["low_score"]
    assert (parts.detector.score_threshold, parts.high_score) == (bar, 0.35)
    given = Stages(IngestConfig.from_settings(detector="nanodet", low_score=0.15), source)
    assert (given.detector.score_threshold, given.high_score) == (0.15, 0.35)
    assert "kept as given: low_score" in given.tracker_note
    one_stage = Stages(IngestConfig(detector="nanodet", low_score=None), source)
    assert (one_stage.detector.score_threshold, one_stage.high_score) == (0.35, 0.0)
    for stages in (parts, given, one_stage):
        stages.close()


def test_auto_runs_the_best_installed_detector_at_the_cameras_size(tiny_world, tmp_path) -> None:
    """``auto`` (the default) is the bundled NanoDet without installed models, YOLOX-Nano at
    the camera's native size once it is installed; the note says which, and a saved state of
    one detector is not resumed with the other."""
    from indexer.ingest.sources import discover_sources
    from indexer.ingest.stages import Stages
    from reid.detect import NanoDetDetector, YoloxDetector
    from reid.detect.catalog import install_model
    from tests.conftest import require_yolox_nano

    source = discover_sources([tiny_world[0]])[0]
    bundled = Stages(IngestConfig(models_dir=str(tmp_path / "models")), source, (360, 480))
    assert IngestConfig().detector == "auto"
    assert isinstance(bundled.detector, NanoDetDetector)
    assert bundled.detector_note.startswith("detector: nanodet (auto")
    bundled.close()
    install_model("yolox-nano", require_yolox_nano(), tmp_path / "models")
    best = Stages(IngestConfig(models_dir=str(tmp_path / "models")), source, (360, 480))
    assert isinstance(best.detector, YoloxDetector) and best.detector.input_hw == (384, 480)
    assert "yolox-nano" in best.detector_note and "384x480" in best.detector_note
    # two-stage at the YOLOX profile's bar; the checkpoint header holds the effective settings
    from reid.track.config import PROFILES

    profile = PROFILES["yolox"]
    assert (best.detector.score_threshold, best.high_score) == (profile["low_score"], 0.35)
    assert best.settings()["tracker"]["n_init"] == profile["n_init"]
    assert best.tracker_note.startswith("tracker: yolox profile")
    assert best.settings()["detector"] != bundled.settings()["detector"]
    assert best.settings()["tracker"] != bundled.settings()["tracker"]
    best.close()


def test_a_detection_stride_still_gives_every_frame_of_a_track(
    world, tmp_path, tiny_embedder
) -> None:
    """With --stride 3 the tracker sees every third frame; the frames between are filled with
    interpolated boxes (confidence 0), so tracks have no holes shorter than ``max_gap`` and
    still score."""
    home = tmp_path / "home"
    home.mkdir()
    db = f"sqlite:///{home / 'db.sqlite'}"
    cfg = IngestConfig(
        detector="oracle", embedder_path=str(tiny_embedder), chunk_frames=20, detect_stride=3
    )
    report = ingest(
        [world], db_url=db, index_path=home / "i.faiss", index_settings=IndexSettings(), cfg=cfg
    )
    assert report.as_dict()["ok"]
    engine = make_engine(db)
    with make_session_factory(engine)() as s:
        got = s.execute(select(Detection.track_id, Detection.frame_idx, Detection.confidence)).all()
    engine.dispose()
    frames: dict[int, list[int]] = {}
    for track, frame, conf in got:
        frames.setdefault(track, []).append(frame)
        assert (frame % 3 == 0) == (conf > 0)  # detector boxes on detected frames only
    for fs in frames.values():
        steps = np.diff(sorted(fs))
        # holes remain only where the person was lost for longer than max_gap (10) frames
        assert ((steps == 1) | (steps > cfg.tracker.max_gap)).all()
    assert sum(conf == 0 for *_, conf in got) > len(got) / 2
    scores = evaluate_tracking(world, db_url=db)
    assert scores["mota"] >= 0.75 and scores["idf1"] >= 0.75


def test_detecting_frames_in_parallel_gives_the_same_rows(world, tmp_path, tiny_embedder) -> None:
    """NanoDet on two threads (frames detected ahead in a pool) stores exactly what one thread
    detecting one frame at a time stores."""
    homes = []
    for threads in (1, 2):
        home = tmp_path / f"t{threads}"
        home.mkdir()
        cfg = IngestConfig(
            detector="nanodet", embedder_path=str(tiny_embedder), chunk_frames=20, threads=threads
        )
        report = ingest(
            [world / "cam1"],
            db_url=f"sqlite:///{home / 'db.sqlite'}",
            index_path=home / "index.faiss",
            index_settings=IndexSettings(),
            cfg=cfg,
        )
        assert report.ok
        homes.append(home)
    one, two = rows(homes[0]), rows(homes[1])
    assert len(one[0]) > 50
    assert one == two


def test_frames_detected_ahead_come_back_in_order_with_the_stride() -> None:
    """A detector that finishes frames out of order still yields them in frame order, skipped
    frames included, and nothing is detected twice."""
    import random
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from indexer.ingest.stages import STAGES, Stages
    from reid.detections import Detections

    seen: list[int] = []
    lock = threading.Lock()

    class Jittery:
        thread_safe = True

        def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
            time.sleep(random.random() * 0.004)
            with lock:
                seen.append(frame_idx)
            return Detections(
                xyxy=np.array([[0, 0, 4, 4]], np.float32),
                confidence=np.ones(1, np.float32),
                frame_idx=np.array([frame_idx]),
            )

    frames = ((i, np.full((4, 4, 3), i % 256, np.uint8)) for i in range(60))
    with ThreadPoolExecutor(3) as pool:
        parts = SimpleNamespace(
            detector=Jittery(),
            pool=pool,
            pool_threads=3,
            times=dict.fromkeys(STAGES, 0.0),
            cfg=SimpleNamespace(detect_stride=2),
        )
        out = list(Stages.detected(parts, frames))  # type: ignore[arg-type]
    assert [i for i, _, _ in out] == list(range(60))
    assert all((d is None) == (i % 2 == 1) for i, _, d in out)
    assert all(int(d.frame_idx[0]) == i for i, _, d in out if d is not None)
    assert all(int(f[0, 0, 0]) == i for i, f, _ in out)
    assert sorted(seen) == list(range(0, 60, 2))
