"""Store functions (after the FastAPI template's ``crud.py``): keyword-only ``session``, no HTTP.

The API routes, the CLI and the ingest pipeline call these; none of them builds SQL itself.
Functions that write commit their own transaction (one call = one unit of work), except the
building blocks that say otherwise.

One module per resource; every name is re-exported here, so callers keep writing
``from indexer.store import repo; repo.commit_chunk(...)``:

* :mod:`~indexer.store.repo.cameras`: get-or-create by name, reads;
* :mod:`~indexer.store.repo.videos`: create, find by content hash, status, checkpoint, resume
  state, delete;
* :mod:`~indexer.store.repo.chunks`: :func:`commit_chunk` and the rewind
  :func:`delete_video_rows_after` (its module docstring explains the crash safety);
* :mod:`~indexer.store.repo.tracks`: track and detection reads, track embeddings, cutting a
  track where the tracker switched people;
* :mod:`~indexer.store.repo.persons`: cross-camera persons, the tracks' links to them, the
  state row (written by ``indexer.query.persons`` only);
* :mod:`~indexer.store.repo.sightings`: sighting reads, vector batches, the vector encoding;
* :mod:`~indexer.store.repo.jobs` and :mod:`~indexer.store.repo.index_state`;
* :mod:`~indexer.store.repo.batches`: id lists cut to fit ``IN (...)``.
"""

from __future__ import annotations

from indexer.store.repo.cameras import (
    get_camera,
    get_camera_by_name,
    get_or_create_camera,
    list_cameras,
)
from indexer.store.repo.chunks import commit_chunk, delete_video_rows_after
from indexer.store.repo.index_state import get_index_state, set_index_state
from indexer.store.repo.jobs import create_job, get_job, list_jobs, update_job
from indexer.store.repo.persons import (
    clear_persons,
    create_persons,
    delete_empty_persons,
    embedder_names,
    foot_points,
    get_person,
    get_person_state,
    get_track,
    person_map,
    set_person_links,
    set_person_state,
    stale_track_count,
    track_rows,
    tracks_for_person,
)
from indexer.store.repo.sightings import (
    SightingPlace,
    all_sighting_vectors,
    decode_vector,
    encode_vector,
    sighting_ids,
    sighting_places,
    sighting_thumbnail,
    sighting_vectors,
    sightings_by_ids,
    sightings_for_track,
    track_sighting_vectors,
)
from indexer.store.repo.tracks import (
    detections_for_track,
    detections_for_video,
    sighting_series,
    split_track,
    track_count,
    track_embedding,
    track_embedding_update,
    tracks_for_camera,
    tracks_for_video,
)
from indexer.store.repo.videos import (
    create_video,
    delete_video,
    find_video_by_hash,
    get_video,
    resume_state,
    set_video_status,
    video_checkpoint,
    videos_for_camera,
)

__all__ = [
    "SightingPlace",
    "all_sighting_vectors",
    "clear_persons",
    "commit_chunk",
    "create_job",
    "create_persons",
    "create_video",
    "decode_vector",
    "delete_empty_persons",
    "delete_video",
    "delete_video_rows_after",
    "detections_for_track",
    "detections_for_video",
    "embedder_names",
    "encode_vector",
    "find_video_by_hash",
    "foot_points",
    "get_camera",
    "get_camera_by_name",
    "get_index_state",
    "get_job",
    "get_or_create_camera",
    "get_person",
    "get_person_state",
    "get_track",
    "get_video",
    "list_cameras",
    "list_jobs",
    "person_map",
    "resume_state",
    "set_index_state",
    "set_person_links",
    "set_person_state",
    "set_video_status",
    "sighting_ids",
    "sighting_places",
    "sighting_series",
    "sighting_thumbnail",
    "sighting_vectors",
    "sightings_by_ids",
    "sightings_for_track",
    "split_track",
    "stale_track_count",
    "track_count",
    "track_embedding",
    "track_embedding_update",
    "track_rows",
    "track_sighting_vectors",
    "tracks_for_camera",
    "tracks_for_person",
    "tracks_for_video",
    "update_job",
    "video_checkpoint",
    "videos_for_camera",
]
