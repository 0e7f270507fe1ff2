"""Search by photo: a person crop or a full frame in, the stored tracks that look alike out.

The photo is embedded with the model the store was built with (a store of another model is
refused, naming both), its vector searched in the ``VectorIndex`` (FAISS ids = sighting ids),
the hits joined to their tracks in SQL and aggregated per track, best first:

* **Crop or frame** (:func:`find_people`, ``mode="auto"``): the ingest detector runs on the
  photo (and, when it finds nobody there, once more on the photo padded by half its size with
  grey: people who fill a crop touch its borders, which detectors dislike). A person box that
  covers at least :data:`CROP_COVER` of the photo makes it a **crop**: the whole photo is
  embedded, as ingestion embeds its crops. Otherwise every detected person is a query (a
  **frame**), embedded from its box as ingestion embeds a frame's boxes; ``box`` picks one.
  Nobody found is an error. ``mode="crop"`` skips the detector (which finds 92-99 % of real
  crops but misses most of the synthetic world's small ones: docs/search.md), ``mode="frame"``
  never treats the photo as a crop.
* **Per-track aggregation**: a track's ``score`` is its best sighting's cosine similarity to the
  query, ``mean_score`` the mean cosine over all of its sightings (read from SQL for every
  candidate track, not only the retrieved ones), ``num_hits`` how many of them the index
  returned. Tracks are ranked by ``(score + mean_score) / 2`` by default (``rank_by="both"``;
  ``"mean"`` and ``"best"`` rank by one of them; ties: the best score, then the lower track
  id). On the stored tracks of three synthetic worlds the average ranked the right person
  first for 77 % of the queries, the mean for 74 %, the best sighting for 70 %
  (docs/search.md): one lucky crop of someone else beats a best-sighting ranking, a blurred or
  occluded crop drags a mean down.
* **Over-fetching**: ``top_k`` tracks need more than ``top_k`` sightings (several per track,
  and filters drop some), so the index is asked for :data:`FETCH_PER_TRACK` sightings per
  wanted track and the search is repeated with 4x more until ``top_k`` tracks pass the
  filters or the whole index has been read: filters never shorten a list that could be full.
* **Filters**: camera names (applied in SQL) and a time window (a track matches when its span
  overlaps ``[start, end]``).
* **Re-ranking** (``rerank=True``): alpha query expansion (``reid.evaluate.rerank``) with the
  :data:`QE_K` nearest sightings, weights ``cos ** QE_ALPHA``, then a second search. It needs
  no gallery-wide pass, unlike k-reciprocal re-ranking, so it works on any index size.

:func:`evaluate_market_search` runs every query of a Market-1501-format folder through this
path against the folder's ingested gallery (``reidtrace ingest --market``) and scores it with
``reid.evaluate.protocol.evaluate_rank``, the protocol ``reidtrace evaluate`` uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.orm import Session

from indexer.index import IndexExpectation, as_location, check_store_model, open_index
from indexer.protocols import VectorIndex
from indexer.store import repo
from indexer.store.models import Camera, Sighting
from reid.data.market import read_market
from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.evaluate.protocol import evaluate_rank
from reid.evaluate.rerank import query_expansion
from reid.protocols import Detector, Embedder
from reid.vectors import l2_normalize

__all__ = [
    "CROP_COVER",
    "FETCH_PER_TRACK",
    "MODES",
    "QE_ALPHA",
    "QE_K",
    "RANK_BY",
    "PersonResult",
    "QueryPerson",
    "SearchFilters",
    "Searcher",
    "TrackHit",
    "aggregate_hits",
    "evaluate_market_search",
    "find_people",
    "parse_time",
    "rank_hits",
    "rank_value",
]

CROP_COVER = 0.5
"""A detected person covering at least this fraction of the photo's area makes it a crop."""
PAD_FRACTION = 0.5
"""Second detection pass: grey border of this fraction of the photo's height/width per side."""
FETCH_PER_TRACK = 8
"""Sightings fetched per wanted track on the first try (ingestion keeps 5 per track)."""
MIN_FETCH = 64
QE_K = 5
"""Query expansion: nearest sightings averaged into the query."""
QE_ALPHA = 3.0
"""Query expansion weight exponent (``cos ** alpha``; 0 = plain average)."""
MODES = ("auto", "crop", "frame")
ImageInput = str | Path | np.ndarray
DetectorFactory = Callable[[tuple[int, int]], Detector]


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackHit:
    """One stored track that looks like the query, with what proves it (its best sighting)."""

    track_id: int
    camera: str
    video_id: int
    start: datetime  # the track's first and last frame times, UTC
    end: datetime
    score: float  # best cosine similarity of the track's retrieved sightings to the query
    mean_score: float  # mean over all of the track's sightings (its retrieved ones in
    # ``aggregate_hits`` alone; ``Searcher`` reads the rest from SQL)
    num_hits: int  # how many of the track's sightings were retrieved
    num_sightings: int  # how many sightings the track has (what ``mean_score`` averages)
    sighting_id: int  # the best sighting: its JPEG is ``Sighting.thumbnail``
    frame_idx: int  # frame of the best sighting in its video

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 UTC strings, scores rounded to 6 decimals."""
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["score"], out["mean_score"] = round(self.score, 6), round(self.mean_score, 6)
        return out


@dataclass(frozen=True)
class QueryPerson:
    """The person of the photo a result list answers: the whole photo (a crop) or one box."""

    box_index: int  # index among the photo's detected people (0 for a crop)
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the photo's pixels
    confidence: float | None  # the detector's score; None when no detector ran
    kind: Literal["crop", "frame"]


@dataclass(frozen=True)
class PersonResult:
    person: QueryPerson
    hits: list[TrackHit]


@dataclass(frozen=True)
class SearchFilters:
    """Which tracks may be returned: camera names (any of them) and a time window."""

    cameras: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for name, when in (("from", self.start), ("to", self.end)):
            if when is not None and (when.tzinfo is None or when.utcoffset() is None):
                raise ValueError(f"{name} must be timezone-aware, got {when!r}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ReidTraceError(
                f"the time window ends before it starts: from {self.start.isoformat()} > "
                f"to {self.end.isoformat()}",
                hint="swap --from and --to",
            )

    def keeps(self, start: datetime, end: datetime) -> bool:
        """Whether a track spanning ``[start, end]`` overlaps the window."""
        if self.start is not None and end < self.start:
            return False
        return not (self.end is not None and start > self.end)


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO-8601 time as an aware UTC datetime; without an offset it is taken as UTC, the
    zone every stored time is in."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError) as err:
        raise ReidTraceError(
            f"{what} {text!r} is not an ISO-8601 time",
            hint='e.g. "2024-05-01T08:00:00" (UTC) or "2024-05-01T10:00:00+02:00"',
        ) from err
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --- per-track aggregation --------------------------------------------------------------------
RANK_BY = ("both", "mean", "best")
"""How tracks are ranked: by ``(score + mean_score) / 2`` (the default), ``mean_score`` or
``score``."""


def rank_value(hit: TrackHit, rank_by: str = "both") -> float:
    """The number ``rank_by`` ranks ``hit`` by (higher = better)."""
    if rank_by == "both":
        return (hit.score + hit.mean_score) / 2.0
    return hit.mean_score if rank_by == "mean" else hit.score


def rank_hits(hits: list[TrackHit], rank_by: str = "both") -> list[TrackHit]:
    """``hits`` best first by :func:`rank_value` (ties: the best score, then the lower track
    id)."""
    if rank_by not in RANK_BY:
        raise ReidTraceError(f"unknown rank_by {rank_by!r}", hint=f"one of {', '.join(RANK_BY)}")
    return sorted(hits, key=lambda h: (-rank_value(h, rank_by), -h.score, h.track_id))


def aggregate_hits(
    scores: np.ndarray,
    ids: np.ndarray,
    places: dict[int, repo.SightingPlace],
    filters: SearchFilters | None = None,
    rank_by: str = "both",
) -> list[TrackHit]:
    """One query's sighting hits (cosine ``scores`` and ``ids``, best first) -> tracks, ranked
    (:func:`rank_hits`); ``mean_score`` is over the retrieved sightings here. Ids without a
    place (-1 padding, a stale index entry, another camera) are skipped."""
    filters = filters or SearchFilters()
    best: dict[int, tuple[float, repo.SightingPlace]] = {}
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    for score, sid in zip(scores.tolist(), ids.tolist(), strict=True):
        place = places.get(int(sid))
        if place is None or not filters.keeps(place.start_time, place.end_time):
            continue
        tid = place.track_id
        if tid not in best or score > best[tid][0]:
            best[tid] = (score, place)
        total[tid] = total.get(tid, 0.0) + score
        count[tid] = count.get(tid, 0) + 1
    hits = [
        TrackHit(
            track_id=tid,
            camera=p.camera,
            video_id=p.video_id,
            start=p.start_time,
            end=p.end_time,
            score=float(s),
            mean_score=total[tid] / count[tid],
            num_hits=count[tid],
            num_sightings=count[tid],
            sighting_id=p.sighting_id,
            frame_idx=p.frame_idx,
        )
        for tid, (s, p) in best.items()
    ]
    return rank_hits(hits, rank_by)


# --- crop or frame ----------------------------------------------------------------------------
def load_image(image: ImageInput) -> np.ndarray:
    """A BGR uint8 photo from a path or an array; unreadable files are user errors."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or not image.size:
            raise ReidTraceError(
                f"a photo must be a BGR uint8 array (height, width, 3), got {image.dtype} "
                f"{image.shape}",
                hint="decode it with cv2.imread",
            )
        return image
    path = Path(image)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ReidTraceError(f"image {str(path)!r} {what}", hint="pass a JPEG or PNG file")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ReidTraceError(
            f"image {str(path)!r} is not a readable image",
            hint="the file may be truncated or not an image; pass a JPEG or PNG file",
        )
    return img


def _detect_padded(img: np.ndarray, detector: DetectorFactory, pad: float) -> Detections:
    h, w = img.shape[:2]
    py, px = round(pad * h), round(pad * w)
    big = img
    if py or px:
        big = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    dets = detector(big.shape[:2]).detect(big, 0)
    if not len(dets):
        return dets
    box = dets.xyxy.astype(np.float32) - np.array([px, py, px, py], np.float32)
    box[:, [0, 2]] = box[:, [0, 2]].clip(0, w)
    box[:, [1, 3]] = box[:, [1, 3]].clip(0, h)
    keep = (box[:, 2] > box[:, 0]) & (box[:, 3] > box[:, 1])
    return Detections(
        xyxy=box[keep], confidence=dets.confidence[keep], frame_idx=dets.frame_idx[keep]
    )


def find_people(
    img: np.ndarray, detector: DetectorFactory | None, mode: str = "auto"
) -> tuple[Literal["crop", "frame"], Detections]:
    """Whether the photo is a crop or a frame, and its people (the rule: module docstring).

    For a crop the one row is the whole photo (confidence: the covering box's, or 1 without a
    detector); for a frame the rows are the detected people, left to right.
    """
    if mode not in MODES:
        raise ReidTraceError(f"unknown search mode {mode!r}", hint=f"one of {', '.join(MODES)}")
    h, w = img.shape[:2]
    whole = np.array([[0, 0, w, h]], np.float32)
    if mode == "crop":
        return "crop", Detections(xyxy=whole, confidence=[1.0], frame_idx=[0])
    if detector is None:
        raise ValueError("a detector is needed unless mode='crop'")
    dets = detector(img.shape[:2]).detect(img, 0)
    if not len(dets):
        dets = _detect_padded(img, detector, PAD_FRACTION)
    if not len(dets):
        looks = 1.2 <= h / w <= 4.5 and h <= 800  # a person crop's shape
        raise ReidTraceError(
            f"no person found in the photo ({w}x{h} px)",
            hint=(
                "it has a person crop's shape: if it is one, "
                if looks
                else "if it is a person crop, "
            )
            + "pass --crop to use the whole photo; else use a photo "
            "where a person is visible",
        )
    area = (dets.xyxy[:, 2] - dets.xyxy[:, 0]) * (dets.xyxy[:, 3] - dets.xyxy[:, 1])
    cover = area / float(w * h)
    if mode == "auto" and cover.max() >= CROP_COVER:
        conf = float(dets.confidence[int(np.argmax(cover))])
        return "crop", Detections(xyxy=whole, confidence=[conf], frame_idx=[0])
    order = np.lexsort((dets.xyxy[:, 1], dets.xyxy[:, 0]))  # left to right, then top down
    return "frame", dets[order]


# --- the searcher -----------------------------------------------------------------------------
def _store_ready(engine: Engine) -> None:
    if not inspect(engine).has_table("sighting"):
        raise ReidTraceError(
            "the store is empty (no tables yet): nothing to search",
            hint="ingest footage first: `reidtrace ingest VIDEO...` or `reidtrace ingest "
            "--market DIR`",
        )


@dataclass
class Searcher:
    """What a search needs, opened once and reused: the store, the index, the embedder and
    (for photos that are not known to be crops) a detector factory ``frame_hw -> Detector``.

    ``embedder.model_id`` must be the model of the store's vectors: :meth:`open` checks it,
    and :meth:`search_vectors` refuses an index whose manifest names another model.
    """

    engine: Engine
    index: VectorIndex
    embedder: Embedder
    detector: DetectorFactory | None = None
    _cameras: set[str] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        *,
        engine: Engine,
        index_location: str | Path,
        embedder: Embedder,
        detector: DetectorFactory | None = None,
        search_params: str | None = None,
    ) -> Searcher:
        """Check the store (not empty, the embedder's model) and load its index (the same
        model): every refusal names the model it found and the configured one."""
        _store_ready(engine)
        model_id = embedder.model_id
        check_store_model(engine, model_id)
        with Session(engine) as session:
            stored = session.scalar(
                select(func.count()).select_from(Sighting).where(Sighting.model == model_id)
            )
        if not stored:
            raise ReidTraceError(
                "the store holds no sightings: nothing to search",
                hint="ingest footage first: `reidtrace ingest VIDEO...` or `reidtrace ingest "
                "--market DIR`",
            )
        # a FAISS file or a vector database URL (``Settings.index_location``), same model check
        index = open_index(
            as_location(index_location),
            IndexExpectation(embedder=model_id),
            search_params=search_params,
        )
        return cls(engine=engine, index=index, embedder=embedder, detector=detector)

    # -- inputs ----------------------------------------------------------------------------
    def camera_names(self) -> set[str]:
        if self._cameras is None:
            with Session(self.engine) as session:
                self._cameras = set(session.scalars(select(Camera.name)))
        return self._cameras

    def check_filters(self, filters: SearchFilters) -> None:
        """Unknown camera names are user errors (a typo would otherwise return nothing)."""
        unknown = sorted(set(filters.cameras) - self.camera_names())
        if unknown:
            known = ", ".join(sorted(self.camera_names())[:20]) or "none"
            raise ReidTraceError(
                f"unknown camera {', '.join(map(repr, unknown))}",
                hint=f"cameras in the store: {known}",
            )

    def query_vectors(
        self, image: ImageInput, *, mode: str = "auto", box: int | None = None
    ) -> tuple[list[QueryPerson], np.ndarray]:
        """The photo's people and their (n, d) unit vectors (``box`` keeps one of them)."""
        img = load_image(image)
        kind, people = find_people(img, self.detector, mode)
        if box is not None:
            if kind == "crop" and box != 0:
                raise ReidTraceError(
                    f"--box {box}: the photo is a person crop (one person, box 0)",
                    hint="leave --box out, or pass a full frame",
                )
            if not 0 <= box < len(people):
                raise ReidTraceError(
                    f"--box {box} is out of range: the photo shows {len(people)} people",
                    hint=f"pick 0 to {len(people) - 1} (left to right), or leave --box out",
                )
            people = people[np.array([box])]
        if kind == "crop":
            vectors = self.embedder.embed_crops([img])
        else:
            vectors = self.embedder.embed(img, people).embedding
        persons = [
            QueryPerson(
                box_index=int(box if box is not None else i),
                box=tuple(round(float(v), 1) for v in people.xyxy[i]),  # type: ignore[arg-type]
                confidence=None if mode == "crop" else float(people.confidence[i]),
                kind=kind,
            )
            for i in range(len(people))
        ]
        return persons, np.asarray(vectors, np.float32)

    # -- search ----------------------------------------------------------------------------
    def size(self) -> int:
        """How many vectors the index holds (every sighting, when it is in sync)."""
        n = getattr(self.index, "ntotal", None)
        if n is None:
            with Session(self.engine) as session:
                n = session.scalar(select(func.count()).select_from(Sighting))
        return int(n or 0)

    def _cosines(self, scores: np.ndarray) -> np.ndarray:
        # an L2 index returns squared distances; between unit vectors |a-b|^2 = 2 - 2 cos
        if getattr(self.index, "metric", "ip") == "l2":
            return 1.0 - scores / 2.0
        return scores

    def _expand(self, session: Session, vectors: np.ndarray) -> np.ndarray:
        _, ids = self.index.search(vectors, QE_K)
        out = vectors.copy()
        for row in range(len(vectors)):
            got, neigh = repo.sighting_vectors(session=session, ids=ids[row][ids[row] >= 0])
            if len(got):
                out[row] = query_expansion(vectors[row : row + 1], neigh, k=QE_K, alpha=QE_ALPHA)[0]
        return out

    def _full_means(
        self,
        session: Session,
        query: np.ndarray,
        hits: list[TrackHit],
        cache: dict[int, np.ndarray],
    ) -> list[TrackHit]:
        """``hits`` with ``mean_score`` over all of each track's sightings (``cache``: track id
        -> its vectors, shared by the queries of one call)."""
        need = [h.track_id for h in hits if h.track_id not in cache]
        if need:
            got = repo.track_sighting_vectors(
                session=session, track_ids=need, model=self.embedder.model_id
            )
            for tid in need:
                cache[tid] = got.get(tid, np.zeros((0, len(query)), np.float32))
        out = []
        for h in hits:
            vecs = cache[h.track_id]
            if len(vecs) <= h.num_hits:  # all of them were retrieved: the mean is exact
                out.append(replace(h, num_sightings=max(len(vecs), h.num_hits)))
                continue
            sims = vecs @ query
            out.append(replace(h, mean_score=float(sims.mean()), num_sightings=len(vecs)))
        return out

    def search_vectors(
        self,
        vectors: np.ndarray,
        *,
        top_k: int = 20,
        filters: SearchFilters | None = None,
        rerank: bool = False,
        rank_by: str = "both",
    ) -> list[list[TrackHit]]:
        """For each query vector (n, d), up to ``top_k`` tracks that pass ``filters``, best
        first by ``rank_by`` (over-fetching until the list is full or the index is exhausted).

        Every track with a retrieved sighting is a candidate; its ``mean_score`` is then taken
        over all of its sightings, read from SQL, before the candidates are ranked and cut.
        """
        rank_hits([], rank_by)  # a bad name fails before any work
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ReidTraceError(f"top-k must be >= 1, got {top_k!r}", hint="e.g. --top-k 20")
        filters = filters or SearchFilters()
        self.check_filters(filters)
        q = l2_normalize(np.asarray(vectors, np.float32).reshape(len(vectors), -1))
        total = self.size()
        out: list[list[TrackHit]] = [[] for _ in range(len(q))]
        if total == 0 or len(q) == 0:
            return out
        with Session(self.engine) as session:
            if rerank:
                q = self._expand(session, q)
            todo = np.arange(len(q))
            k = min(total, max(MIN_FETCH, FETCH_PER_TRACK * top_k))
            track_vectors: dict[int, np.ndarray] = {}
            while len(todo):
                scores, ids = self.index.search(q[todo], k)
                scores = self._cosines(scores)
                places = repo.sighting_places(
                    session=session, ids=ids.ravel(), cameras=filters.cameras
                )
                left = []
                for row, qi in enumerate(todo.tolist()):
                    hits = aggregate_hits(scores[row], ids[row], places, filters, rank_by)
                    hits = self._full_means(session, q[qi], hits, track_vectors)
                    out[qi] = rank_hits(hits, rank_by)[:top_k]
                    if len(hits) < top_k and k < total:
                        left.append(qi)
                todo = np.asarray(left, np.int64)
                k = min(total, 4 * k)
        return out

    def search_image(
        self,
        image: ImageInput,
        *,
        top_k: int = 20,
        filters: SearchFilters | None = None,
        rerank: bool = False,
        mode: str = "auto",
        box: int | None = None,
        rank_by: str = "both",
    ) -> list[PersonResult]:
        """One result list per person of the photo (one for a crop, or for ``box``)."""
        filters = filters or SearchFilters()
        self.check_filters(filters)  # before the (slower) detector and embedder run
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ReidTraceError(f"top-k must be >= 1, got {top_k!r}", hint="e.g. --top-k 20")
        persons, vectors = self.query_vectors(image, mode=mode, box=box)
        lists = self.search_vectors(
            vectors, top_k=top_k, filters=filters, rerank=rerank, rank_by=rank_by
        )
        return [PersonResult(p, h) for p, h in zip(persons, lists, strict=True)]

    def thumbnail(self, sighting_id: int) -> bytes | None:
        """The JPEG of a hit's best sighting (``TrackHit.sighting_id``)."""
        with Session(self.engine) as session:
            return repo.sighting_thumbnail(session=session, sighting_id=sighting_id)


# --- Market-1501 protocol through the search path ---------------------------------------------
def _thumb_key(camera: str, frame_idx: int, data: bytes) -> tuple[str, int, str]:
    return camera, int(frame_idx), hashlib.sha256(data).hexdigest()


FAR = 4.0
"""Distance given to gallery entries the search does not return (junk, never ingested): above
every cosine distance (at most 2), finite as ``evaluate_rank`` requires."""


def evaluate_market_search(
    searcher: Searcher,
    folder: str | Path,
    *,
    rerank: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Score search on a Market-1501-format folder whose gallery was ingested
    (``reidtrace ingest --market DIR``): the Market protocol, as ``reidtrace evaluate``.

    Every query image goes through the search path as a crop (``mode="crop"``: Market
    queries are crops), restricted to the folder's cameras (``<folder>-c<N>``), with ``top_k``
    = every track there, so the whole ranking is known (mAP needs it); tracks that are not
    gallery images (a store of ``--split all``) are left out of the matrix. Hits are mapped back to
    gallery images by camera, frame and the thumbnail's bytes (ingestion keeps each crop's file
    as its thumbnail), and ``1 - score`` becomes the row of a query x gallery distance matrix
    scored by ``evaluate_rank``, which drops same-identity-same-camera entries and junk.
    Returns ``RankResult.as_percent()`` plus ``rerank`` and ``seconds``; a gallery image
    missing from the store is an error.
    """
    import time

    t0 = time.perf_counter()
    data = read_market(folder, require_train=False)
    name = Path(data.root).name
    gallery = list(data.gallery)
    cameras = tuple(sorted({f"{name}-c{im.camid}" for im in gallery}))
    unknown = set(cameras) - searcher.camera_names()
    if unknown:
        raise ReidTraceError(
            f"the store has no camera of {name!r} ({', '.join(sorted(unknown))}): its gallery "
            "was not ingested",
            hint=f"run `reidtrace ingest --market {folder}` first (same model, same store)",
        )
    keys: dict[tuple[str, int, str], list[int]] = {}
    for gi, im in enumerate(gallery):
        keys.setdefault(
            _thumb_key(f"{name}-c{im.camid}", im.frame, im.path.read_bytes()), []
        ).append(gi)
    filters = SearchFilters(cameras=cameras)
    dist = np.full((len(data.query), len(gallery)), FAR, np.float32)
    sid_to_g: dict[int, list[int]] = {}
    found: set[int] = set()
    for qi, im in enumerate(data.query):
        _, vec = searcher.query_vectors(im.path, mode="crop")
        every = max(len(gallery), searcher.size())
        hits = searcher.search_vectors(vec, top_k=every, filters=filters, rerank=rerank)[0]
        new = [h for h in hits if h.sighting_id not in sid_to_g]
        if new:
            with Session(searcher.engine) as session:
                rows = repo.sightings_by_ids(session=session, ids=[h.sighting_id for h in new])
            for h in new:
                thumb = rows[h.sighting_id].thumbnail if h.sighting_id in rows else None
                gis = (
                    [] if thumb is None else keys.get(_thumb_key(h.camera, h.frame_idx, thumb), [])
                )
                sid_to_g[h.sighting_id] = gis
        for h in hits:
            for gi in sid_to_g[h.sighting_id]:
                dist[qi, gi] = min(dist[qi, gi], 1.0 - h.score)
                found.add(gi)
        if progress:
            progress("searching queries", qi + 1, len(data.query))
    q_pids, q_cams = data.arrays("query")
    g_pids, g_cams = data.arrays("gallery")
    missing = sum(1 for gi, im in enumerate(gallery) if im.pid != -1 and gi not in found)
    if missing:
        raise ReidTraceError(
            f"{missing} of {len(gallery)} gallery images of {name!r} are not in the store",
            hint=f"run `reidtrace ingest --market {folder}` (split gallery) with this model",
        )
    result = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams).as_percent()
    return {
        **result,
        "rerank": bool(rerank),
        "seconds": round(time.perf_counter() - t0, 3),
    }
