"""Search by photo: aggregation, filters, over-fetching, the crop/frame rule, refusals, and the
Market protocol through the search path (equal to ``evaluate`` on a tiny gallery)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from indexer.index import rebuild_index
from indexer.query.search import (
    CROP_COVER,
    MIN_FETCH,
    RANK_BY,
    Searcher,
    SearchFilters,
    aggregate_hits,
    evaluate_market_search,
    find_people,
    load_image,
    parse_time,
)
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.models import Camera, Video
from reid.detections import Detections
from reid.errors import ReidTraceError
from tests.indexer.conftest import DIM, MODEL, START, FakeIngest, make_detections, make_sightings

# --- fakes --------------------------------------------------------------------------------------


class NumpyIndex:
    """Brute-force ``VectorIndex`` (inner product), enough to test what search does with hits."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids, self.vectors = np.asarray(ids, np.int64), np.asarray(vectors, np.float32)
        self.calls: list[int] = []

    @property
    def ntotal(self) -> int:
        return len(self.ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids = np.concatenate([self.ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(k)
        sim = queries @ self.vectors.T
        order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(sim, order, axis=1)
        ids = self.ids[order]
        if k > len(self.ids):  # FAISS pads with -1
            pad = k - len(self.ids)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        return scores.astype(np.float32), ids


class FakeEmbedder:
    """Every crop and every box embeds to ``vector`` (box i to ``vectors[i]`` when given)."""

    dim = DIM

    def __init__(self, vector: np.ndarray, model_id: str = MODEL) -> None:
        self.vector = np.asarray(vector, np.float32).reshape(-1, DIM)
        self.model_id = model_id

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.repeat(self.vector[:1], len(crops), axis=0)

    def embed(self, frame: np.ndarray, detections: Detections) -> Detections:
        rows = [self.vector[i % len(self.vector)] for i in range(len(detections))]
        detections.embedding = np.array(rows, np.float32).reshape(-1, DIM)
        return detections


def boxes_detector(boxes: list[list[float]]):
    """A detector factory that finds ``boxes`` in every photo (in the photo's coordinates)."""

    class Fixed:
        def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
            n = len(boxes)
            return Detections(
                xyxy=np.array(boxes, np.float32).reshape(-1, 4),
                confidence=np.full(n, 0.9),
                frame_idx=np.full(n, frame_idx),
            )

    return lambda frame_hw: Fixed()


def stored_vectors(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    with Session(engine) as s:
        parts = list(repo.all_sighting_vectors(session=s))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def searcher_for(engine: Engine, query: np.ndarray, **kw) -> Searcher:
    ids, vecs = stored_vectors(engine)
    return Searcher(engine=engine, index=NumpyIndex(ids, vecs), embedder=FakeEmbedder(query), **kw)


@pytest.fixture
def store(engine: Engine, session: Session, video: Video, fake_ingest: FakeIngest) -> Engine:
    """cam1: tracks 1-3 (fake_ingest); cam2: one track, one hour later."""
    fake_ingest.run(session, video.id)
    cam2 = repo.get_or_create_camera(session=session, name="cam2", width=640, height=480, fps=10.0)
    v2 = repo.create_video(
        session=session,
        camera_id=cam2.id,
        path="/videos/cam2.mp4",
        content_hash="cd" * 32,
        start_time=START + timedelta(hours=1),
        fps=10.0,
        num_frames=50,
        width=640,
        height=480,
    )
    repo.commit_chunk(
        session=session,
        video_id=v2.id,
        frames_done=50,
        detections=make_detections({1: range(0, 50)}, seed=3),
        sightings=make_sightings([(1, 10), (1, 40)], seed=3),
    )
    return engine


def track_of(engine: Engine, camera: str, track_no: int) -> tuple[int, np.ndarray]:
    """A stored track's id and its first sighting's vector."""
    with Session(engine) as s:
        cam = repo.get_camera_by_name(session=s, name=camera)
        assert cam is not None
        video = repo.videos_for_camera(session=s, camera_id=cam.id)[0]
        track = next(
            t for t in repo.tracks_for_video(session=s, video_id=video.id) if t.track_no == track_no
        )
        sighting = repo.sightings_for_track(session=s, track_id=track.id)[0]
        return track.id, repo.decode_vector(sighting.vector)


# --- aggregation --------------------------------------------------------------------------------


def place(sid: int, tid: int, camera: str = "cam1", minute: int = 0) -> repo.SightingPlace:
    t0 = START + timedelta(minutes=minute)
    return repo.SightingPlace(sid, tid, 10 * sid, 1, camera, t0, t0 + timedelta(seconds=30))


def test_aggregation_keeps_best_mean_and_count_per_track_ranked_by_best() -> None:
    places = {1: place(1, 7), 2: place(2, 7), 3: place(3, 8), 4: place(4, 7), 5: place(5, 9)}
    scores = np.array([0.9, 0.85, 0.5, 0.3, 0.85], np.float32)
    ids = np.array([3, 5, 1, 2, 99])  # 99: not in SQL any more (stale index): skipped
    hits = aggregate_hits(scores, ids, places, rank_by="best")
    assert [h.track_id for h in hits] == [8, 9, 7]
    t7 = hits[2]
    assert t7.score == pytest.approx(0.5) and t7.mean_score == pytest.approx(0.4)
    assert t7.num_hits == 2 and t7.sighting_id == 1 and t7.frame_idx == 10
    # a tie on the best score ranks the lower track id first
    tie = aggregate_hits(np.array([0.7, 0.7]), np.array([5, 3]), places, rank_by="best")
    assert [h.track_id for h in tie] == [8, 9]


def test_ranking_choices_on_a_track_with_one_lucky_crop() -> None:
    places = {1: place(1, 7), 2: place(2, 7), 3: place(3, 8), 4: place(4, 8)}
    scores = np.array([0.9, 0.7, 0.65, 0.0], np.float32)  # track 8: one lucky crop (0.9)
    ids = np.array([3, 1, 2, 4])
    by = {r: [h.track_id for h in aggregate_hits(scores, ids, places, rank_by=r)] for r in RANK_BY}
    assert by == {"mean": [7, 8], "best": [8, 7], "both": [7, 8]}  # 0.6875 against 0.675
    # "both" ranks by (best + mean) / 2: 0.6875 against 0.775 when track 8's other crop is 0.4
    scores[3] = 0.4
    assert [h.track_id for h in aggregate_hits(scores, ids, places)] == [8, 7]
    assert [h.track_id for h in aggregate_hits(scores, ids, places, rank_by="mean")] == [7, 8]
    with pytest.raises(ReidTraceError, match="unknown rank_by"):
        aggregate_hits(scores, ids, places, rank_by="median")


def test_aggregation_applies_the_time_window_by_overlap() -> None:
    places = {1: place(1, 1, minute=0), 2: place(2, 2, minute=10)}
    at = START + timedelta(minutes=10, seconds=15)  # inside track 2's 30 s span only
    got = aggregate_hits(np.array([0.9, 0.8]), np.array([1, 2]), places, SearchFilters(start=at))
    assert [h.track_id for h in got] == [2]
    got = aggregate_hits(
        np.array([0.9, 0.8]),
        np.array([1, 2]),
        places,
        SearchFilters(end=START + timedelta(seconds=30)),
    )
    assert [h.track_id for h in got] == [1]  # ends exactly when track 1 ends: still overlaps


def test_time_window_and_times_are_checked() -> None:
    with pytest.raises(ReidTraceError, match="ends before it starts"):
        SearchFilters(start=START, end=START - timedelta(seconds=1))
    assert parse_time("2024-05-01T12:00:00") == START
    assert parse_time("2024-05-01T14:00:00+02:00") == START
    assert parse_time("2024-05-01T12:00:00Z") == START
    with pytest.raises(ReidTraceError, match="not an ISO-8601"):
        parse_time("yesterday", "--from")


# --- search over a small store ------------------------------------------------------------------


def test_a_track_s_own_vector_finds_it_first(store: Engine) -> None:
    tid, vec = track_of(store, "cam1", 3)
    searcher = searcher_for(store, vec)
    hits = searcher.search_vectors(vec[None], top_k=10, rank_by="best")[0]
    assert hits[0].track_id == tid and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].camera == "cam1" and hits[0].num_hits == hits[0].num_sightings == 2
    assert len(hits) == 4  # every track of both cameras
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    by_mean = searcher.search_vectors(vec[None], top_k=10, rank_by="mean")[0]
    assert [h.mean_score for h in by_mean] == sorted((h.mean_score for h in by_mean), reverse=True)
    assert {h.track_id for h in by_mean} == {h.track_id for h in hits}


def test_mean_is_over_all_of_a_track_s_sightings_not_only_retrieved_ones(store: Engine) -> None:
    class TopOne(NumpyIndex):  # an index that only ever returns its nearest vector
        def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            scores, ids = super().search(queries, k)
            return scores[:, :1], ids[:, :1]

    tid, vec = track_of(store, "cam1", 3)
    ids, vecs = stored_vectors(store)
    searcher = Searcher(engine=store, index=TopOne(ids, vecs), embedder=FakeEmbedder(vec))
    (hit,) = searcher.search_vectors(vec[None], top_k=1)[0]
    with Session(store) as s:
        both = [
            repo.decode_vector(x.vector) for x in repo.sightings_for_track(session=s, track_id=tid)
        ]
    assert hit.track_id == tid and hit.num_hits == 1 and hit.num_sightings == 2
    assert hit.mean_score == pytest.approx(float(np.mean([b @ vec for b in both])), abs=1e-5)
    assert hit.mean_score < hit.score


def test_camera_filter_and_unknown_camera(store: Engine) -> None:
    _, vec = track_of(store, "cam2", 1)
    searcher = searcher_for(store, vec)
    hits = searcher.search_vectors(vec[None], top_k=10, filters=SearchFilters(cameras=("cam1",)))[0]
    assert hits and {h.camera for h in hits} == {"cam1"}
    with pytest.raises(ReidTraceError, match="unknown camera 'cam9'") as err:
        searcher.search_vectors(vec[None], filters=SearchFilters(cameras=("cam9",)))
    assert "cam1, cam2" in (err.value.hint or "")


def test_time_filter_on_stored_tracks(store: Engine) -> None:
    _, vec = track_of(store, "cam1", 1)
    searcher = searcher_for(store, vec)
    later = SearchFilters(start=START + timedelta(minutes=30))
    assert {h.camera for h in searcher.search_vectors(vec[None], filters=later)[0]} == {"cam2"}
    earlier = SearchFilters(end=START + timedelta(minutes=30))
    assert {h.camera for h in searcher.search_vectors(vec[None], filters=earlier)[0]} == {"cam1"}


def test_filters_never_shorten_a_list_that_could_be_full(store: Engine, session: Session) -> None:
    """Many cam1 sightings closer to the query than cam2's: the search fetches more until it
    reaches cam2's track, instead of returning an empty list."""
    _, vec = track_of(store, "cam1", 1)
    cam1 = repo.get_camera_by_name(session=session, name="cam1")
    v = repo.create_video(
        session=session,
        camera_id=cam1.id,  # type: ignore[union-attr]
        path="/videos/cam1b.mp4",
        content_hash="ef" * 32,
        start_time=START,
        fps=10.0,
        num_frames=200,
        width=640,
        height=480,
    )
    n = MIN_FETCH + 40
    rng = np.random.default_rng(5)
    near = vec + 0.05 * rng.standard_normal((n, DIM)).astype(np.float32)
    sightings = [
        s.model_copy(update={"vector": (x / np.linalg.norm(x)).astype(np.float32)})
        for s, x in zip(make_sightings([(i + 1, i) for i in range(n)], seed=6), near, strict=True)
    ]
    repo.commit_chunk(
        session=session,
        video_id=v.id,
        frames_done=200,
        detections=make_detections({i + 1: range(i, i + 1) for i in range(n)}),
        sightings=sightings,
    )
    searcher = searcher_for(store, vec)
    hits = searcher.search_vectors(vec[None], top_k=1, filters=SearchFilters(cameras=("cam2",)))[0]
    assert len(hits) == 1 and hits[0].camera == "cam2"
    assert searcher.index.calls[0] == MIN_FETCH and len(searcher.index.calls) > 1  # type: ignore[attr-defined]


def test_query_expansion_keeps_the_nearest_track_first(store: Engine) -> None:
    tid, vec = track_of(store, "cam1", 2)
    hits = searcher_for(store, vec).search_vectors(vec[None], top_k=3, rerank=True, rank_by="best")[
        0
    ]
    assert hits[0].track_id == tid and len(hits) == 3


def test_top_k_must_be_positive(store: Engine) -> None:
    _, vec = track_of(store, "cam1", 1)
    with pytest.raises(ReidTraceError, match="top-k must be >= 1"):
        searcher_for(store, vec).search_vectors(vec[None], top_k=0)


# --- photos: crop or frame ----------------------------------------------------------------------


def photo(tmp_path: Path, w: int = 200, h: int = 300) -> Path:
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))
    return path


def test_a_person_covering_the_photo_makes_it_a_crop(store: Engine, tmp_path: Path) -> None:
    tid, vec = track_of(store, "cam1", 3)
    side = float(np.sqrt(CROP_COVER)) + 0.01  # a box just above the threshold
    det = boxes_detector([[0, 0, 200 * side, 300 * side]])
    out = searcher_for(store, vec, detector=det).search_image(
        photo(tmp_path), top_k=2, rank_by="best"
    )
    assert len(out) == 1 and out[0].person.kind == "crop"
    assert out[0].person.box == (0.0, 0.0, 200.0, 300.0)
    assert out[0].hits[0].track_id == tid
    # mode="frame": the same photo is a frame with one person, searched by its box
    (framed,) = searcher_for(store, vec, detector=det).search_image(photo(tmp_path), mode="frame")
    assert framed.person.kind == "frame" and framed.person.box[2] == pytest.approx(
        200 * side, abs=0.1
    )


def test_a_frame_gives_one_list_per_person_or_the_chosen_box(store: Engine, tmp_path: Path) -> None:
    (t1, v1), (t3, v3) = track_of(store, "cam1", 1), track_of(store, "cam1", 3)
    det = boxes_detector([[120, 10, 150, 80], [10, 10, 40, 80]])  # right one first
    searcher = searcher_for(store, v1, detector=det)
    searcher.embedder = FakeEmbedder(np.stack([v1, v3]))  # left person -> v1, right -> v3
    out = searcher.search_image(photo(tmp_path), top_k=1, rank_by="best")
    assert [r.person.kind for r in out] == ["frame", "frame"]
    assert [r.person.box[0] for r in out] == [10.0, 120.0]  # people left to right
    assert [r.hits[0].track_id for r in out] == [t1, t3]
    one = searcher.search_image(photo(tmp_path), top_k=1, box=1)
    assert len(one) == 1 and one[0].person.box_index == 1
    with pytest.raises(ReidTraceError, match="out of range: the photo shows 2 people"):
        searcher.search_image(photo(tmp_path), box=2)


def test_no_person_is_an_error_that_suggests_crop(store: Engine, tmp_path: Path) -> None:
    _, vec = track_of(store, "cam1", 1)
    searcher = searcher_for(store, vec, detector=boxes_detector([]))
    with pytest.raises(ReidTraceError, match="no person found") as err:
        searcher.search_image(photo(tmp_path))
    assert "--crop" in (err.value.hint or "")
    # mode="crop" runs no detector and uses the whole photo
    out = searcher.search_image(photo(tmp_path), mode="crop")
    assert out[0].person.kind == "crop" and out[0].person.confidence is None


def test_the_padded_second_pass_maps_boxes_back_to_the_photo() -> None:
    calls: list[tuple[int, int]] = []

    class EdgeShy:  # finds the person only when there is a border around it
        def detect(self, frame: np.ndarray, frame_idx: int) -> Detections:
            calls.append(frame.shape[:2])
            if len(calls) == 1:
                return Detections.empty()
            h, w = frame.shape[:2]
            return Detections(
                xyxy=[[w / 4, h / 4, 3 * w / 4, 3 * h / 4]], confidence=[0.8], frame_idx=[0]
            )

    kind, people = find_people(np.zeros((100, 50, 3), np.uint8), lambda hw: EdgeShy())
    assert calls == [(100, 50), (200, 100)]
    assert kind == "crop" and people.xyxy.tolist() == [[0, 0, 50, 100]]


def test_unreadable_and_missing_images_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ReidTraceError, match="not a readable image"):
        load_image(bad)
    with pytest.raises(ReidTraceError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ReidTraceError, match="BGR uint8"):
        load_image(np.zeros((4, 4), np.float32))


# --- opening a store: model and emptiness -------------------------------------------------------


def test_open_refuses_another_model_naming_both(store: Engine, tmp_path: Path) -> None:
    rebuild_index(store, tmp_path / "i.faiss", IndexSettings(), MODEL)
    with pytest.raises(ReidTraceError) as err:
        Searcher.open(
            engine=store,
            index_location=tmp_path / "i.faiss",
            embedder=FakeEmbedder(np.ones(DIM), "other-1234"),
        )
    assert MODEL in err.value.message and "other-1234" in err.value.message
    ok = Searcher.open(
        engine=store, index_location=tmp_path / "i.faiss", embedder=FakeEmbedder(np.ones(DIM))
    )
    assert ok.index.ntotal == 8  # type: ignore[attr-defined]


def test_search_through_a_qdrant_collection_equals_the_faiss_file(
    store: Engine, tmp_path: Path
) -> None:
    """``index_location`` may be a vector database URL (``Settings.index_url``): the same hits."""
    pytest.importorskip("qdrant_client", reason="the [vectordb] extra (qdrant-client) is absent")
    from indexer.index import sync_index

    url = f"qdrant:///{tmp_path / 'qdrant'}"
    rebuild_index(store, tmp_path / "i.faiss", IndexSettings(), MODEL)
    sync_index(store, url, IndexSettings(), MODEL)
    tid, vec = track_of(store, "cam1", 3)
    answers = []
    for location in (tmp_path / "i.faiss", url):
        searcher = Searcher.open(engine=store, index_location=location, embedder=FakeEmbedder(vec))
        hits = searcher.search_vectors(vec[None], top_k=10)[0]
        answers.append([(h.track_id, round(h.score, 5), h.num_hits) for h in hits])
    assert answers[0][0][0] == tid and answers[0] == answers[1]


def test_open_refuses_an_index_of_another_model_naming_both(store: Engine, tmp_path: Path) -> None:
    from indexer.index import FaissIndex

    FaissIndex(DIM, embedder="other-1234").save(tmp_path / "i.faiss")
    with pytest.raises(ReidTraceError) as err:
        Searcher.open(
            engine=store, index_location=tmp_path / "i.faiss", embedder=FakeEmbedder(np.ones(DIM))
        )
    assert MODEL in err.value.message and "other-1234" in err.value.message


def test_open_refuses_an_empty_store(engine: Engine, tmp_path: Path) -> None:
    from indexer.store.db import make_engine

    bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    with pytest.raises(ReidTraceError, match="store is empty"):
        Searcher.open(
            engine=bare, index_location=tmp_path / "i.faiss", embedder=FakeEmbedder(np.ones(DIM))
        )
    with pytest.raises(ReidTraceError, match="no sightings"):  # tables, no rows
        Searcher.open(
            engine=engine, index_location=tmp_path / "i.faiss", embedder=FakeEmbedder(np.ones(DIM))
        )


# --- Market protocol through the search path ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gallery(
    tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Path
) -> tuple[Path, Path]:
    """6 identities x 3 cameras x 3 crops, gallery ingested with the tiny embedder."""
    from indexer.ingest import IngestConfig, ingest
    from reid.synth.crops import CropsConfig, generate_crops

    root = tmp_path_factory.mktemp("market")
    generate_crops(
        root / "m", CropsConfig(seed=0, cameras=3, identities=6, images_per_camera=3), workers=1
    )
    home = root / "home"
    home.mkdir()
    report = ingest(
        [root / "m" / "market"],
        db_url=f"sqlite:///{home / 'db.sqlite'}",
        index_path=home / "i.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(embedder_path=str(tiny_embedder)),
        market_split="gallery",
    )
    assert report.ok
    return root / "m" / "market", home


def test_market_search_scores_equal_evaluate(
    tiny_gallery: tuple[Path, Path], tiny_embedder: Path
) -> None:
    from indexer.store.db import make_engine
    from reid.embed import create_embedder
    from reid.evaluate.run import evaluate_model

    folder, home = tiny_gallery
    searcher = Searcher.open(
        engine=make_engine(f"sqlite:///{home / 'db.sqlite'}"),
        index_location=home / "i.faiss",
        embedder=create_embedder("onnx", path=tiny_embedder, threads=1),
    )
    got = evaluate_market_search(searcher, folder)
    want = evaluate_model(folder, tiny_embedder, threads=1)
    for key in ("rank1", "mAP", "rank5", "num_query", "num_gallery"):
        assert got[key] == pytest.approx(want[key], abs=1e-3), key
    assert 0 < got["rank1"] <= 100


def test_market_search_ignores_query_and_train_crops_in_the_store(
    tiny_gallery: tuple[Path, Path], tiny_embedder: Path, tmp_path: Path
) -> None:
    """A store of ``--split all`` also holds the query and train crops in the same cameras:
    they are not gallery entries, so the scores stay those of ``evaluate``."""
    from indexer.ingest import IngestConfig, ingest
    from indexer.store.db import make_engine
    from reid.embed import create_embedder
    from reid.evaluate.run import evaluate_model

    folder, _ = tiny_gallery
    db = f"sqlite:///{tmp_path / 'all.db'}"
    cfg = IngestConfig(embedder_path=str(tiny_embedder))
    kw = {"db_url": db, "index_path": tmp_path / "all.faiss", "index_settings": IndexSettings()}
    assert ingest([folder], cfg=cfg, market_split="all", **kw).ok
    searcher = Searcher.open(
        engine=make_engine(db),
        index_location=tmp_path / "all.faiss",
        embedder=create_embedder("onnx", path=tiny_embedder, threads=1),
    )
    got = evaluate_market_search(searcher, folder)
    want = evaluate_model(folder, tiny_embedder, threads=1)
    assert (got["rank1"], got["mAP"]) == pytest.approx((want["rank1"], want["mAP"]), abs=1e-3)


def test_market_search_needs_the_gallery_ingested(
    tiny_gallery: tuple[Path, Path], engine: Engine, session: Session
) -> None:
    folder, _ = tiny_gallery
    session.add(Camera(name="elsewhere", width=1, height=1, fps=1.0))
    session.commit()
    searcher = Searcher(
        engine=engine,
        index=NumpyIndex(np.zeros(0), np.zeros((0, DIM))),
        embedder=FakeEmbedder(np.ones(DIM)),
    )
    with pytest.raises(ReidTraceError, match="was not ingested"):
        evaluate_market_search(searcher, folder)


def test_naive_times_are_a_bug() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SearchFilters(start=datetime(2024, 1, 1))
    assert SearchFilters(start=datetime(2024, 1, 1, tzinfo=UTC)).keeps(START, START)
