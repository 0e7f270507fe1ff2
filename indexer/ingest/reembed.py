"""The store as adaptation data, and re-embedding the store with another model.

``store_crops`` writes every sighting's thumbnail (the JPEG crop kept at ingestion) to a folder
and returns what unsupervised adaptation needs as plain data: a track id per crop (a track is
one person) and the pairs of tracks that share time in one camera (two people).

``reembed_store`` replaces every sighting's vector with the new model's embedding of its
thumbnail, recomputes the track embeddings, and rebuilds the vector index: a store holds one
model's vectors (``indexer.index.sync.check_store_model``), so it changes model as a whole.
Crash safety: the crops are embedded into a scratch file first, with nothing written to the
store; then one transaction swaps every vector, model id and track embedding (a kill before its
commit leaves the old model's store and index untouched and usable); then the index is rebuilt
from SQL. A kill after the commit leaves an index of the old model that the next
``sync_index`` with the new model (ingestion and the app run it) rebuilds from SQL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from indexer.index.sync import rebuild_index
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.models import Sighting, Track
from indexer.store.repo.batches import in_batches
from reid.embed import OnnxEmbedder
from reid.errors import ReidTraceError

__all__ = ["ReembedReport", "StoreCrops", "reembed_store", "store_crops"]

Progress = Callable[[str, int, int], None]


@dataclass
class StoreCrops:
    """Crops written from the store: ``paths[i]`` is sighting ``sighting_ids[i]`` of track
    ``groups[i]``; ``cannot_link`` are pairs of track ids that overlap in time in one camera."""

    paths: list[Path]
    sighting_ids: np.ndarray
    groups: np.ndarray
    cannot_link: list[tuple[int, int]] = field(default_factory=list)

    @property
    def tracks(self) -> int:
        return len(set(self.groups.tolist()))


def _overlapping_tracks(rows: Sequence[tuple[int, int, object, object]]) -> list[tuple[int, int]]:
    """Pairs of tracks of one camera whose [start, end] times intersect (a sweep per camera)."""
    pairs: list[tuple[int, int]] = []
    by_cam: dict[int, list[tuple[object, object, int]]] = {}
    for tid, cam, start, end in rows:
        by_cam.setdefault(cam, []).append((start, end, tid))
    for spans in by_cam.values():
        spans.sort(key=lambda s: (s[0], s[2]))
        active: list[tuple[object, int]] = []  # (end, track)
        for start, end, tid in spans:
            active = [(e, t) for e, t in active if e >= start]  # type: ignore[operator]
            pairs.extend((t, tid) for _, t in active)
            active.append((end, tid))
    return pairs


def store_crops(
    engine: Engine, folder: str | Path, *, progress: Progress | None = None, batch: int = 500
) -> StoreCrops:
    """Write every sighting thumbnail of the store to ``folder`` (``<sighting id>.jpg``).

    Errors: a store with no tracks, or with no thumbnails at all.
    """
    folder = Path(folder)
    with Session(engine) as session:
        tracks = session.execute(
            select(Track.id, Track.camera_id, Track.start_time, Track.end_time)
        ).all()
        if not tracks:
            raise ReidTraceError(
                "the store has no tracks to adapt on",
                hint="ingest footage first (`reidtrace ingest`), or adapt on --crops DIR",
            )
        ids = session.scalars(
            select(Sighting.id).where(Sighting.thumbnail.is_not(None)).order_by(Sighting.id)
        ).all()
        if not ids:
            raise ReidTraceError(
                "the store's sightings keep no thumbnails to adapt on",
                hint="ingest again (thumbnails are kept by default), or adapt on --crops DIR",
            )
        folder.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        sids: list[int] = []
        groups: list[int] = []
        for n, part in enumerate(in_batches(ids, batch)):
            rows = session.execute(
                select(Sighting.id, Sighting.track_id, Sighting.thumbnail).where(
                    Sighting.id.in_(list(part))
                )
            ).all()
            for sid, tid, jpeg in sorted(rows):
                path = folder / f"{sid}.jpg"
                if not path.is_file() or path.stat().st_size != len(jpeg):
                    path.write_bytes(jpeg)
                paths.append(path)
                sids.append(int(sid))
                groups.append(int(tid))
            if progress:
                progress("thumbnails", min((n + 1) * batch, len(ids)), len(ids))
    used = set(groups)
    pairs = _overlapping_tracks([r for r in tracks if r[0] in used])
    return StoreCrops(paths, np.asarray(sids, np.int64), np.asarray(groups, np.int64), pairs)


@dataclass
class ReembedReport:
    """What :func:`reembed_store` did."""

    old_models: list[str]
    model: str
    sightings: int
    tracks: int
    index_count: int
    index: str


def _decode(jpeg: bytes | None, sid: int) -> np.ndarray:
    img = None if not jpeg else cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ReidTraceError(
            f"sighting {sid}'s thumbnail does not decode", hint="ingest that video again"
        )
    return img


def reembed_store(
    engine: Engine,
    embedder: OnnxEmbedder,
    index_location: str | Path,
    index_settings: IndexSettings,
    *,
    progress: Progress | None = None,
    batch: int = 256,
    scratch: str | Path | None = None,
) -> ReembedReport:
    """Re-embed every sighting from its thumbnail with ``embedder`` and rebuild the index.

    Refuses (before writing anything) a store whose sightings lack thumbnails: they could not
    be re-embedded, and keeping their old vectors would mix two models.
    """
    new_id = embedder.model_id
    with Session(engine) as session:
        counts = dict(
            session.execute(select(Sighting.model, func.count()).group_by(Sighting.model)).all()
        )
        total = sum(counts.values())
        if total == 0:
            raise ReidTraceError(
                "the store has no sightings to re-embed", hint="ingest footage first"
            )
        bare = session.scalar(
            select(func.count()).select_from(Sighting).where(Sighting.thumbnail.is_(None))
        )
        if bare:
            raise ReidTraceError(
                f"{bare} of {total} sightings keep no thumbnail and cannot be re-embedded",
                hint="ingest their videos again with the new model instead",
            )
        ids = session.scalars(select(Sighting.id).order_by(Sighting.id)).all()
    with tempfile.TemporaryDirectory(dir=scratch, prefix="reembed-") as tmp:
        # embed everything first, outside any transaction: the store stays the old model's
        vectors = np.lib.format.open_memmap(
            Path(tmp) / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(ids), embedder.dim)
        )
        done = 0
        with Session(engine) as session:
            for part in in_batches(ids, batch):
                rows = sorted(
                    session.execute(
                        select(Sighting.id, Sighting.thumbnail).where(Sighting.id.in_(list(part)))
                    ).all()
                )
                crops = [_decode(jpeg, int(sid)) for sid, jpeg in rows]
                vectors[done : done + len(crops)] = embedder.embed_crops(crops)
                done += len(crops)
                if progress:
                    progress("re-embed sightings", done, len(ids))
        if done != len(ids):
            raise ReidTraceError(
                "sightings were deleted while re-embedding", hint="run the re-embed again"
            )
        # one transaction: every vector, model id and track embedding, or none of them
        with Session(engine) as session, session.begin():
            for lo in range(0, len(ids), batch):
                chunk = ids[lo : lo + batch]
                session.execute(
                    update(Sighting),
                    [
                        {
                            "id": int(sid),
                            "vector": repo.encode_vector(vectors[lo + j]),
                            "dim": embedder.dim,
                            "model": new_id,
                        }
                        for j, sid in enumerate(chunk)
                    ],
                )
            track_ids = session.scalars(select(Sighting.track_id).distinct()).all()
            tracks = repo.track_embedding_update(
                session=session, track_ids=track_ids, model=new_id, commit=False
            )
    manifest = rebuild_index(engine, index_location, index_settings, new_id)
    return ReembedReport(
        old_models=sorted(counts),
        model=new_id,
        sightings=len(ids),
        tracks=tracks,
        index_count=int(manifest.count),
        index=str(index_location),
    )
