"""The vector index against SQL: rebuild, verify and sync, one model per store.

SQL is the source of truth and the index a persisted, rebuildable cache of the ``sighting``
table. Anything the index gets wrong (a crash between the SQL commit and the index write, a lost
file, a changed factory) is healed from SQL: :func:`sync_index` adds what is missing and removes
what is stray (ingestion runs it before and after its videos, the app at start-up),
:func:`rebuild_index` starts over, :func:`verify_index` only reports. The ``index_state`` row
records the generation last written, so ``verify_index`` can tell an old or restored file from
the current one.

Every vector carries the id of the model that made it (``Sighting.model``,
``reid.embed.model_identity``), and a store holds one model's vectors: given the configured
model, these functions refuse a database or an index of another one (:func:`check_store_model`)
instead of mixing spaces whose cosines mean nothing to each other. Only ingesting again can
change a store's model; rebuilding re-reads stored vectors and cannot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from indexer.index.location import (
    AnyIndex,
    IndexLocation,
    as_location,
    describe,
    is_index_url,
    location_lock,
    new_index,
    open_index,
    stored_generation,
)
from indexer.index.manifest import (
    IndexExpectation,
    IndexManifest,
    model_mismatch_error,
    read_manifest,
    rebuild_hint,
)
from indexer.settings import IndexSettings
from indexer.store import repo
from indexer.store.models import Sighting
from reid.errors import ReidTraceError

__all__ = [
    "SyncReport",
    "VerifyReport",
    "check_store_model",
    "rebuild_index",
    "sync_index",
    "verify_index",
]

EXACT_ATOL = 1e-4  # float32 round trip through an exact index
LOSSY_MIN_COSINE = 0.5  # a compressed code still points the right way; a wrong vector does not


@contextlib.contextmanager
def _session(db: Engine | Session) -> Iterator[Session]:
    if isinstance(db, Session):
        yield db
        return
    with Session(db, expire_on_commit=False) as session:
        yield session


def _stored_dim(session: Session, model_id: str) -> int | None:
    dims = session.scalars(select(Sighting.dim).where(Sighting.model == model_id).distinct()).all()
    if len(dims) > 1:
        raise ReidTraceError(
            f"the store holds sightings of {sorted(dims)} dimensions for model {model_id!r}",
            hint="delete the sightings of one of them, or ingest again into a new database",
        )
    return int(dims[0]) if dims else None


def check_store_model(db: Engine | Session, model_id: str) -> None:
    """Refuse a database that holds vectors of any model other than ``model_id``.

    One store, one model: a FAISS index holds one model's vectors, and vectors of two models
    live in different spaces (their cosine means nothing), so a store of two models would either
    mix them in search or silently leave one model's sightings out of it. Ingestion calls this
    (through :func:`sync_index`) before it writes anything; there is no option to mix. Vectors
    stored before they named their model (``LEGACY_MODEL``, "default") count as another model:
    which file made them is unknown, so they must be ingested again.
    """
    if not isinstance(model_id, str) or not model_id.strip():
        raise ReidTraceError(
            f"the model id must be a non-empty string, got {model_id!r}",
            hint="pass OnnxEmbedder.model_id or reid.embed.model_identity(path)",
        )
    with _session(db) as session:
        # two seeks on the (model, id) index: cheap however many rows the store holds
        other = session.scalar(select(Sighting.model).where(Sighting.model < model_id).limit(1))
        if other is None:
            other = session.scalar(select(Sighting.model).where(Sighting.model > model_id).limit(1))
        if other is None:
            return
        counts = dict(
            session.execute(select(Sighting.model, func.count()).group_by(Sighting.model)).all()
        )
    counts.pop(model_id, None)
    built = max(sorted(counts), key=lambda m: counts[m])
    raise model_mismatch_error(f"the database ({counts[built]} sightings)", built, model_id)


def _generation_floor(session: Session, path: IndexLocation) -> int:
    """The highest generation known anywhere, so a new write never reuses a number."""
    state = repo.get_index_state(session=session)
    floor = state.generation if state is not None else 0
    with contextlib.suppress(ReidTraceError):
        floor = max(floor, stored_generation(path))
    return floor


def _record(session: Session, path: IndexLocation, index: AnyIndex) -> None:
    repo.set_index_state(
        session=session,
        generation=index.generation,
        count=index.ntotal,
        embedder=index.embedder,
        path=describe(path),
    )


def _hint(path: IndexLocation) -> str:
    if is_index_url(path):
        return "`reidtrace index rebuild` recreates the collection from the database"
    return rebuild_hint(Path(path))


def _rebuild(
    session: Session,
    path: IndexLocation,
    settings: IndexSettings,
    model_id: str,
    *,
    dim: int | None,
    batch: int,
    max_train: int,
    seed: int,
) -> AnyIndex:
    check_store_model(session, model_id)
    stored = _stored_dim(session, model_id)
    if stored is not None and dim is not None and stored != dim:
        raise ReidTraceError(
            f"model {model_id!r} has {stored}-d sightings in the store, not {dim}-d",
            hint="pass the model's real dimension, or none to take it from the store",
        )
    dim = stored if stored is not None else dim
    if dim is None:
        raise ReidTraceError(
            f"no sightings of model {model_id!r} in the store, so the index dimension is unknown",
            hint="ingest a video first (or pass dim=...)",
        )
    index = new_index(path, settings, dim=dim, embedder=model_id)
    if not index.is_trained:
        ids = repo.sighting_ids(session=session, model=model_id)
        if len(ids) == 0:
            raise ReidTraceError(
                f"index.factory={settings.factory!r} needs training vectors and the store has "
                f"no sightings of {model_id!r}",
                hint='ingest first, or use "IDMap2,Flat" (no training) for small galleries',
            )
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(ids, size=min(len(ids), max_train), replace=False))
        _, vectors = repo.sighting_vectors(session=session, ids=pick.tolist())
        index.train(vectors)
    for ids, vectors in repo.all_sighting_vectors(session=session, model=model_id, batch=batch):
        index.add(ids, vectors, check_ids=False)  # primary keys, into an empty index
    index.generation = _generation_floor(session, path)
    index.save(path)
    _record(session, path, index)
    return index


def rebuild_index(
    db: Engine | Session,
    path: str | Path,
    settings: IndexSettings,
    model_id: str,
    *,
    dim: int | None = None,
    batch: int = 10_000,
    max_train: int = 100_000,
    seed: int = 0,
) -> IndexManifest:
    """Build the index afresh from every sighting of ``model_id`` and save it at ``path``.

    Trains (IVF/PQ) on up to ``max_train`` stored vectors drawn at random, then streams the
    vectors in id order, ``batch`` rows at a time. ``dim`` is needed only for an empty store.
    A database holding vectors of another model is refused (:func:`check_store_model`).
    """
    path = as_location(path)
    with location_lock(path), _session(db) as session:
        index = _rebuild(
            session,
            path,
            settings,
            model_id,
            dim=dim,
            batch=batch,
            max_train=max_train,
            seed=seed,
        )
    return index.manifest() if is_index_url(path) else read_manifest(Path(path))


class VerifyReport(BaseModel):
    """How the index at ``path`` differs from SQL (``ok`` when it does not)."""

    path: str
    embedder: str | None = None
    sql_count: int = 0
    index_count: int = 0
    missing_ids: list[int] = []  # in SQL, not in the index
    stray_ids: list[int] = []  # in the index, not in SQL
    mismatched_ids: list[int] = []  # sampled ids whose vectors differ
    vectors_checked: int = 0
    exact: bool | None = None  # vectors compared exactly (Flat) or loosely (compressed codes)
    index_generation: int | None = None
    sql_generation: int | None = None  # index_state: the generation last written
    error: str | None = None  # the index could not be loaded at all

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per problem found, for people."""
        out = []
        if self.error:
            out.append(self.error)
        if self.missing_ids:
            out.append(f"{len(self.missing_ids)} sightings are missing from the index")
        if self.stray_ids:
            out.append(f"{len(self.stray_ids)} index entries have no sighting in SQL")
        if self.mismatched_ids:
            out.append(
                f"{len(self.mismatched_ids)} of {self.vectors_checked} sampled vectors differ "
                "from SQL"
            )
        if self.error is None and self.index_generation != self.sql_generation:
            out.append(
                f"index file generation {self.index_generation} != generation "
                f"{self.sql_generation} recorded in SQL"
            )
        return out


def _mismatched(session: Session, index: AnyIndex, ids: np.ndarray) -> list[int]:
    if len(ids) == 0:
        return []
    got_ids, sql = repo.sighting_vectors(session=session, ids=ids.tolist())
    if len(got_ids) == 0:
        return []
    if sql.shape[1] != index.dim:
        return got_ids.tolist()
    stored = index.reconstruct(got_ids)
    if index.exact:
        bad = np.abs(stored - sql).max(axis=1) > EXACT_ATOL
    else:
        norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(sql, axis=1)
        cos = (stored * sql).sum(axis=1) / np.maximum(norms, 1e-12)
        bad = cos < LOSSY_MIN_COSINE
    return got_ids[bad].tolist()


def _sample(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def verify_index(
    db: Engine | Session,
    path: str | Path,
    model_id: str | None = None,
    *,
    sample: int = 256,
    seed: int = 0,
) -> VerifyReport:
    """Compare the index at ``path`` with SQL: missing and stray ids (all of them), vectors (a
    random ``sample`` of the shared ids) and the generation against ``index_state``.

    With ``model_id`` (the configured model) a database of another model is an error
    (:func:`check_store_model`) and an index of another model a reported problem; without it
    the index is compared with the sightings of the model its manifest names.
    """
    path = as_location(path)
    with _session(db) as session:
        if model_id is not None:
            check_store_model(session, model_id)
        state = repo.get_index_state(session=session)
        report = VerifyReport(
            path=str(path), sql_generation=state.generation if state is not None else None
        )
        try:
            index = open_index(path, IndexExpectation(embedder=model_id))
        except ReidTraceError as err:
            report.error = err.message
            return report
        sql = repo.sighting_ids(session=session, model=index.embedder)
        have = index.ids()
        common = np.intersect1d(sql, have, assume_unique=True)
        checked = _sample(common, sample, seed)
        report.embedder = index.embedder
        report.sql_count = len(sql)
        report.index_count = len(have)
        report.missing_ids = np.setdiff1d(sql, have, assume_unique=True).tolist()
        report.stray_ids = np.setdiff1d(have, sql, assume_unique=True).tolist()
        report.mismatched_ids = _mismatched(session, index, checked)
        report.vectors_checked = len(checked)
        report.exact = index.exact
        report.index_generation = index.generation
        return report


class SyncReport(BaseModel):
    """What :func:`sync_index` changed."""

    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    reason: str | None = None  # why it rebuilt
    count: int = 0
    generation: int = 0
    saved: bool = False  # a new generation was written


def sync_index(
    db: Engine | Session,
    path: str | Path,
    settings: IndexSettings | None = None,
    model_id: str | None = None,
    *,
    sample: int = 256,
    batch: int = 10_000,
    seed: int = 0,
) -> SyncReport:
    """Make the index at ``path`` hold exactly the sightings SQL has; cheap when it does.

    Adds missing ids, removes stray ones, replaces sampled vectors that differ, and records the
    generation in ``index_state``. With ``settings`` and ``model_id`` it also rebuilds from SQL
    when the file is missing or unreadable, was built with another model (whose vectors the
    database no longer holds), metric or factory, cannot remove, or is untrained; without them
    such an index is an error. With ``model_id``, a database holding vectors of another model
    is refused before anything is written (:func:`check_store_model`); without it the index is
    synced with the sightings of the model its manifest names.
    """
    path = as_location(path)
    with location_lock(path), _session(db) as session:
        if model_id is not None:
            check_store_model(session, model_id)
        expect = None
        if settings is not None or model_id is not None:
            expect = IndexExpectation(
                embedder=model_id,
                metric=settings.metric if settings is not None else None,
                # a vector database has no FAISS factory to compare
                factory=None if settings is None or is_index_url(path) else settings.factory,
            )
        try:
            index: AnyIndex | None = open_index(
                path,
                expect,
                search_params=settings.search_params if settings is not None else None,
            )
            reason = None
        except ReidTraceError as err:
            index, reason = None, err.message

        def rebuild(why: str) -> SyncReport:
            if settings is None or model_id is None:
                raise ReidTraceError(
                    f"cannot sync the vector index {path}: {why}",
                    hint="pass the index settings and the model id so it can be rebuilt "
                    "from the database, or " + _hint(path),
                )
            new = _rebuild(
                session,
                path,
                settings,
                model_id,
                dim=None,
                batch=batch,
                max_train=100_000,
                seed=seed,
            )
            return SyncReport(
                added=new.ntotal,
                rebuilt=True,
                reason=why,
                count=new.ntotal,
                generation=new.generation,
                saved=True,
            )

        if index is None:
            return rebuild(reason or "no index")
        stored_dim = _stored_dim(session, index.embedder)
        if stored_dim is not None and stored_dim != index.dim:
            return rebuild(f"the index is {index.dim}-d, the sightings {stored_dim}-d")

        sql = repo.sighting_ids(session=session, model=index.embedder)
        have = index.ids()
        missing = np.setdiff1d(sql, have, assume_unique=True)
        stray = np.setdiff1d(have, sql, assume_unique=True)
        common = np.intersect1d(sql, have, assume_unique=True)
        bad = np.asarray(_mismatched(session, index, _sample(common, sample, seed)), np.int64)
        drop = np.union1d(stray, bad)
        add = np.union1d(missing, bad)
        removed = 0
        if len(drop):
            try:
                removed = index.remove_ids(drop)
            except ReidTraceError as err:
                return rebuild(err.message)
        if len(add) and not index.is_trained:
            return rebuild("the index is not trained")
        for start in range(0, len(add), batch):
            ids, vectors = repo.sighting_vectors(session=session, ids=add[start : start + batch])
            index.add(ids, vectors, check_ids=False)  # missing or just removed: not present
        state = repo.get_index_state(session=session)
        # A file older than the generation SQL recorded (a restored backup) is rewritten under
        # a new number: readers that poll the manifest must never see a number twice.
        behind = state is not None and state.generation > index.generation
        saved = bool(len(drop) or len(add) or behind)
        if saved:
            index.generation = _generation_floor(session, path)
            index.save(path)
        if saved or state is None or state.generation != index.generation:
            _record(session, path, index)  # also when the file is ahead (crash before this)
        return SyncReport(
            added=len(add),
            removed=removed,
            count=index.ntotal,
            generation=index.generation,
            saved=saved,
        )
