"""Unsupervised adaptation: pseudo-labels honour track constraints, a tiny run end to end,
re-embedding a store (the index refuses the new model until then), one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from indexer.index.sync import check_store_model, rebuild_index, sync_index, verify_index
from indexer.ingest.reembed import reembed_store, store_crops
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.db import make_engine
from indexer.store.models import Base, Sighting
from indexer.store.schemas import SightingCreate
from reid.detections import Detections
from reid.embed import OnnxEmbedder, model_identity
from reid.errors import ReidTraceError
from reid.models import create_model, save_checkpoint
from reid.train.adapt import AdaptConfig, adapt, pseudo_labels
from reidtrace.cli import main

ARCH = "osnet_x0_25_128x64"
# tiny-world settings: 8 identities x ~16 crops; a random network's neighbourhoods are small
TINY = dict(batch_size=16, num_instances=4, k1=10, k2=3, eps=0.5, min_samples=2)
TINY = {**TINY, "workers": 0, "threads": 1}


def blobs(n_per: int = 6, centres: int = 3, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)) * 4
    return np.concatenate([c[i] + 0.05 * rng.standard_normal((n_per, dim)) for i in range(centres)])


def test_pseudo_labels_cluster_blobs_without_constraints() -> None:
    labels = pseudo_labels(blobs(), eps=0.5, min_samples=2, k1=5, k2=1)
    assert labels.max() + 1 == 3
    assert all(len(set(labels[i * 6 : (i + 1) * 6])) == 1 for i in range(3))


def test_co_occurring_tracks_never_share_a_pseudo_label() -> None:
    feats = blobs()
    # each blob holds two tracks of 3 crops; the two tracks of blob 0 and of blob 1 co-occur
    groups = np.repeat(np.arange(6), 3)
    cannot = [(0, 1), (2, 3)]
    labels = pseudo_labels(
        feats, eps=0.5, min_samples=2, k1=5, k2=1, groups=groups, cannot_link=cannot
    )
    for t in range(6):  # one label per track
        assert len(set(labels[groups == t])) == 1 and labels[groups == t][0] >= 0
    for a, b in cannot:
        assert labels[groups == a][0] != labels[groups == b][0]
    assert labels[groups == 4][0] == labels[groups == 5][0]  # unconstrained: still together


def test_one_track_is_one_pseudo_identity_even_when_spread() -> None:
    feats = blobs()
    groups = np.full(len(feats), -1)
    groups[[0, 6]] = 7  # one crop of blob 0 and one of blob 1 belong to the same track
    labels = pseudo_labels(feats, eps=0.5, min_samples=2, k1=5, k2=1, groups=groups)
    assert labels[0] == labels[6] >= 0


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("src") / "src.pt"
    save_checkpoint(path, create_model(ARCH), epoch=0)
    return path


@pytest.fixture(scope="module")
def crops(tiny_market: Path) -> list[Path]:
    return sorted((tiny_market / "bounding_box_train").glob("*.jpg"))


@pytest.fixture(scope="module")
def run(source: Path, crops: list[Path], tiny_market: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("adapt") / "run"
    stages: list[str] = []
    cfg = AdaptConfig(
        images=crops,
        out=out,
        model=str(source),
        rounds=1,
        iters_per_round=2,
        eval_data=tiny_market,
        **TINY,
    )
    report = adapt(cfg, progress=lambda s, d, t: stages.append(s))
    report["stages"] = stages
    return report


def test_adapt_writes_a_new_model_and_report(run: dict, crops: list[Path]) -> None:
    out = Path(run["out"])
    assert (out / "model.onnx").is_file() and (out / "adapted.pt").is_file()
    assert run["model_id"] == model_identity(out / "model.onnx")
    assert run["model_id"] != run["source_model_id"] == model_identity(out / "source.onnx")
    # the weights moved: the same crops embed differently
    new = OnnxEmbedder(out / "model.onnx").embed_paths(crops[:8])
    old = OnnxEmbedder(out / "source.onnx").embed_paths(crops[:8])
    assert np.abs(new - old).max() > 1e-3
    assert run["rounds"] == 1 and run["history"][0]["iters"] == 2
    assert run["history"][0]["clusters"] >= 4
    assert set(run["before"]) >= {"mAP", "rank1"} and set(run["after"]) >= {"mAP", "rank1"}
    assert json.loads((out / "report.json").read_text())["model_id"] == run["model_id"]
    assert {"embed crops", "iterations", "rounds"} <= set(run["stages"])


def test_resume_continues_at_the_next_round(run: dict, source: Path, crops: list[Path]) -> None:
    out = Path(run["out"])
    cfg = AdaptConfig(
        images=crops, out=out, model=str(source), rounds=2, iters_per_round=1, resume=True, **TINY
    )
    report = adapt(cfg)
    assert [h["round"] for h in report["history"]] == [1, 2]
    assert report["history"][1]["iters"] == 1
    with pytest.raises(ReidTraceError, match="already holds"):
        adapt(AdaptConfig(images=crops, out=out, model=str(source), **TINY))


def test_bad_inputs_are_project_errors(source: Path, crops: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ReidTraceError, match="too few to cluster"):
        adapt(AdaptConfig(images=crops[:5], out=tmp_path / "a", model=str(source), **TINY))
    with pytest.raises(ReidTraceError, match="clusters, fewer than"):  # one person, 4 crops
        adapt(AdaptConfig(images=crops[:1] * 20, out=tmp_path / "b", model=str(source), **TINY))
    bad = torch.load(source, weights_only=True)
    bad["arch"] = "not_a_network"
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ReidTraceError, match="does not know"):
        adapt(AdaptConfig(images=crops, out=tmp_path / "c", model=str(tmp_path / "bad.pt"), **TINY))


@pytest.mark.parametrize(
    ("setup", "expect"),
    [
        ("empty", "it is empty"),
        ("text", "holds no images"),
        ("none", "exactly one source"),
        ("store", "no tracks"),
    ],
)
def test_cli_errors_are_one_line(setup, expect, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "home"))
    folder = tmp_path / "crops"
    folder.mkdir()
    if setup == "text":
        (folder / "notes.txt").write_text("no crops here")
    argv = ["adapt", "--out", str(tmp_path / "run")]
    if setup in ("empty", "text"):
        argv += ["--crops", str(folder)]
    elif setup == "store":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        Base.metadata.create_all(make_engine(url))
        monkeypatch.setenv("REIDTRACE_DATABASE_URL", url)
        argv += ["--from-store"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expect in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 or err.count("error:") == 1


# --- the store: constraints out, re-embedding in ----------------------------------------------
def _jpeg(path: Path) -> bytes:
    return cv2.imencode(".jpg", cv2.imread(str(path)))[1].tobytes()


@pytest.fixture
def store(run: dict, crops: list[Path], tmp_path: Path):
    """A store of the source model: 3 tracks in one camera (1-2 and 2-3 overlap in time)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    old = OnnxEmbedder(Path(run["out"]) / "source.onnx")
    spans = {1: range(0, 30), 2: range(10, 70), 3: range(60, 100)}
    picks = [(1, 5), (1, 25), (2, 15), (2, 65), (3, 70), (3, 90)]
    thumbs = [_jpeg(p) for p in crops[: len(picks)]]
    vecs = old.embed_crops([cv2.imdecode(np.frombuffer(t, np.uint8), 1) for t in thumbs])
    from sqlalchemy.orm import Session

    with Session(engine, expire_on_commit=False) as s:
        cam = repo.get_or_create_camera(session=s, name="c1", width=320, height=240, fps=10.0)
        video = repo.create_video(
            session=s,
            camera_id=cam.id,
            path="/v.mp4",
            content_hash="ab" * 32,
            start_time=datetime(2024, 5, 1, tzinfo=UTC),
            fps=10.0,
            num_frames=100,
            width=320,
            height=240,
        )
        rows = [(no, f) for no, fr in spans.items() for f in fr]
        xyxy = np.array([[10.0 * no, 10, 10.0 * no + 20, 60] for no, _ in rows], np.float32)
        dets = Detections(
            xyxy=xyxy,
            confidence=np.full(len(rows), 0.9, np.float32),
            frame_idx=np.array([f for _, f in rows]),
            track_id=np.array([no for no, _ in rows]),
        )
        sightings = [
            SightingCreate(
                track_no=no, frame_idx=f, vector=v, model=old.model_id, quality=0.5, thumbnail=t
            )
            for (no, f), v, t in zip(picks, vecs, thumbs, strict=True)
        ]
        repo.commit_chunk(
            session=s, video_id=video.id, frames_done=100, detections=dets, sightings=sightings
        )
    index = tmp_path / "index.faiss"
    rebuild_index(engine, index, IndexSettings(), old.model_id)
    yield engine, index, old
    engine.dispose()


def test_store_crops_give_tracks_and_co_occurrence(store, tmp_path: Path) -> None:
    engine, _, _ = store
    got = store_crops(engine, tmp_path / "crops")
    assert len(got.paths) == 6 and all(p.is_file() for p in got.paths)
    assert got.tracks == 3
    by_no = {no: tid for no, tid in zip([1, 1, 2, 2, 3, 3], got.groups, strict=True)}
    pairs = {tuple(sorted(p)) for p in got.cannot_link}
    assert pairs == {tuple(sorted((by_no[1], by_no[2]))), tuple(sorted((by_no[2], by_no[3])))}


def test_index_refuses_the_new_model_until_reembedded(store, run: dict) -> None:
    engine, index, old = store
    new = OnnxEmbedder(run["model"])
    settings = IndexSettings()
    with pytest.raises(ReidTraceError, match="model"):
        sync_index(engine, index, settings, new.model_id)
    report = reembed_store(engine, new, index, settings)
    assert report.sightings == 6 and report.index_count == 6 and report.old_models == [old.model_id]
    assert sync_index(engine, index, settings, new.model_id).count == 6
    assert verify_index(engine, index, new.model_id).ok
    with pytest.raises(ReidTraceError):
        check_store_model(engine, old.model_id)  # never mixed: the old model is gone
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        rows = s.execute(select(Sighting.thumbnail, Sighting.vector).order_by(Sighting.id)).all()
    want = new.embed_crops([cv2.imdecode(np.frombuffer(t, np.uint8), 1) for t, _ in rows])
    got = np.stack([repo.decode_vector(v) for _, v in rows])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_reembed_refuses_sightings_without_thumbnails(store, run: dict) -> None:
    engine, index, old = store
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    with Session(engine) as s:
        s.execute(update(Sighting).where(Sighting.id == 1).values(thumbnail=None))
        s.commit()
    with pytest.raises(ReidTraceError, match="no thumbnail"):
        reembed_store(engine, OnnxEmbedder(run["model"]), index, IndexSettings())
    check_store_model(engine, old.model_id)  # nothing was written


def test_cli_adapts_on_the_store_and_reembeds_it(
    run: dict, source: Path, tiny_market: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from indexer.ingest import IngestConfig, ingest

    home = tmp_path / "home"
    home.mkdir()
    old = Path(run["out"]) / "source.onnx"
    report = ingest(
        [tiny_market],
        db_url=f"sqlite:///{home / 'reidtrace.db'}",
        index_path=home / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(embedder_path=str(old)),
        market_split="train",
    )
    assert report.ok
    monkeypatch.setenv("REIDTRACE_HOME", str(home))
    out = tmp_path / "run"
    argv = ["adapt", "--from-store", "--model", str(source), "--out", str(out), "--rounds", "1"]
    argv += ["--iters-per-round", "1", "--batch-size", "16", "--k1", "10", "--k2", "3"]
    argv += ["--eps", "0.5", "--min-samples", "2", "--reembed", "--json"]
    main(argv)
    doc = json.loads(capsys.readouterr().out)
    assert doc["reembed"]["model"] == doc["model_id"] == model_identity(out / "model.onnx")
    assert doc["reembed"]["old_models"] == [model_identity(old)]
    assert doc["reembed"]["sightings"] == doc["reembed"]["index_count"] > 0
    assert doc["config"]["tracks"] > 0
    engine = make_engine(f"sqlite:///{home / 'reidtrace.db'}")
    check_store_model(engine, doc["model_id"])  # the whole store is the new model's
    assert verify_index(engine, home / "index.faiss", doc["model_id"]).ok


def test_onnx_of_an_architecture_import_cannot_rebuild_is_one_line(
    run: dict, crops: list[Path], tmp_path: Path, capsys
) -> None:
    src = Path(run["out"]) / "source.onnx"  # osnet: the ONNX importer knows MobileNetV2 only
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "adapt",
                "--crops",
                str(crops[0].parent),
                "--model",
                str(src),
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "cannot be imported" in err
