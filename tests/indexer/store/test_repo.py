"""The repo functions on in-memory SQLite: cameras, videos, chunks, resume, sightings, jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from indexer.store import repo
from indexer.store.models import Camera, Detection, Sighting, Track, Video
from indexer.store.repo import chunks
from indexer.store.schemas import (
    CameraPublic,
    SightingPublic,
    TrackPublic,
    VideoPublic,
)
from reid.errors import ReidTraceError
from tests.indexer.conftest import DIM, MODEL, START, FakeIngest, make_detections, make_sightings


def counts(session: Session) -> tuple[int, int, int]:
    def n(model: type) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return n(Track), n(Detection), n(Sighting)


def test_camera_is_created_once_and_validated(session: Session, camera: Camera) -> None:
    again = repo.get_or_create_camera(session=session, name="cam1", width=1, height=1, fps=1)
    assert again.id == camera.id and again.width == 640  # existing camera returned unchanged
    assert CameraPublic.model_validate(camera).homography[0][0] == pytest.approx(0.1)
    with pytest.raises(ReidTraceError, match="3x3"):
        repo.get_or_create_camera(
            session=session, name="c2", width=10, height=10, fps=5, homography=[[1, 2]]
        )
    with pytest.raises(ReidTraceError, match="positive"):
        repo.get_or_create_camera(session=session, name="c3", width=0, height=10, fps=5)
    with pytest.raises(ReidTraceError) as err:
        repo.get_camera(session=session, camera_id=999)
    assert err.value.status == 404


def test_video_times_are_utc_and_duplicates_refused(
    session: Session, camera: Camera, video: Video
) -> None:
    session.expunge_all()  # read back from the database, not the identity map
    got = repo.find_video_by_hash(session=session, camera_id=camera.id, content_hash="ab" * 32)
    assert got is not None and got.id == video.id
    assert got.start_time == START and got.start_time.tzinfo is not None
    assert got.status == "pending" and got.frames_done == 0
    assert VideoPublic.model_validate(got).start_time.utcoffset() == timedelta(0)
    with pytest.raises(ReidTraceError) as err:
        repo.create_video(
            session=session,
            camera_id=camera.id,
            path="/elsewhere/same-bytes.mp4",
            content_hash="ab" * 32,
            start_time=START,
            fps=10,
            num_frames=100,
            width=640,
            height=480,
        )
    assert err.value.status == 409 and "already stored" in err.value.message
    with pytest.raises(ReidTraceError, match="time zone"):
        repo.create_video(
            session=session,
            camera_id=camera.id,
            path="/v2.mp4",
            content_hash="cd" * 32,
            start_time=datetime(2024, 1, 1),  # naive
            fps=10,
            num_frames=1,
            width=1,
            height=1,
        )
    done = repo.set_video_status(session=session, video_id=video.id, status="failed", error="x")
    assert (done.status, done.error) == ("failed", "x")
    with pytest.raises(ValueError):
        repo.set_video_status(session=session, video_id=video.id, status="weird")


def test_commit_chunk_writes_tracks_detections_sightings(
    session: Session, video: Video, fake_ingest: FakeIngest
) -> None:
    ids = fake_ingest.run(session, video.id)
    assert len(ids) == 6 and ids == sorted(ids)
    assert counts(session) == (3, 30 + 40 + 20 + 40, 6)
    session.expunge_all()
    tracks = {t.track_no: t for t in repo.tracks_for_video(session=session, video_id=video.id)}
    two = tracks[2]  # crosses the chunk boundary: extended, not duplicated
    assert (two.start_frame, two.end_frame, two.num_detections) == (10, 69, 60)
    assert two.start_time == START + timedelta(seconds=1.0)
    assert two.end_time == START + timedelta(seconds=6.9)
    assert two.start_time.tzinfo is not None
    # the embedding is the L2-normalised mean of its sightings' vectors
    vecs = [
        repo.decode_vector(s.vector)
        for s in repo.sightings_for_track(session=session, track_id=two.id)
    ]
    mean = np.mean(vecs, axis=0)
    np.testing.assert_allclose(repo.track_embedding(two), mean / np.linalg.norm(mean), atol=1e-6)
    assert TrackPublic.model_validate(two).has_embedding
    # foot points through the homography (10 px = 1 m): bottom centre of the box
    det = repo.detections_for_track(session=session, track_id=two.id)[0]
    assert det.frame_idx == 10
    assert det.foot_x == pytest.approx((det.x1 + det.x2) / 2 / 10, rel=1e-5)
    assert det.foot_y == pytest.approx(det.y2 / 10, rel=1e-5)
    assert det.time == START + timedelta(seconds=1)
    video_row = repo.get_video(session=session, video_id=video.id)
    assert video_row.frames_done == 100
    sightings = repo.sightings_for_track(session=session, track_id=tracks[3].id)
    assert [s.detection.frame_idx for s in sightings] == [70, 90]
    public = SightingPublic.model_validate(sightings[0])
    assert public.dim == DIM and public.model == MODEL and public.has_thumbnail


def test_rerunning_a_chunk_after_a_crash_duplicates_nothing(
    session: Session, video: Video, fake_ingest: FakeIngest
) -> None:
    first = fake_ingest.run(session, video.id)
    before = counts(session)
    embeddings = {
        t.id: t.embedding for t in repo.tracks_for_video(session=session, video_id=video.id)
    }
    # the process died after committing a chunk and before recording it: the same chunks again
    for frames_done, dets, sightings in fake_ingest.chunks:
        out = repo.commit_chunk(
            session=session,
            video_id=video.id,
            frames_done=frames_done,
            detections=dets,
            sightings=sightings,
        )
        assert out.detections_inserted == 0 and out.detections_ignored == len(dets)
        assert out.sighting_ids == [] and out.sightings_ignored == len(sightings)
        assert out.tracks_created == 0
    # an overlapping re-run (frames 40..59 of the first chunk and the second) is a no-op too
    s2 = fake_ingest.chunks[1][2]
    overlap = make_detections({2: range(40, 70), 3: range(60, 100)}, seed=2)
    repo.commit_chunk(
        session=session, video_id=video.id, frames_done=100, detections=overlap, sightings=s2
    )
    assert counts(session) == before
    session.expunge_all()
    tracks = repo.tracks_for_video(session=session, video_id=video.id)
    assert {t.id: t.embedding for t in tracks} == embeddings
    assert [t.num_detections for t in tracks] == [30, 60, 40]
    assert sorted(repo.sighting_ids(session=session).tolist()) == first  # FAISS ids kept


def test_a_crash_inside_a_chunk_leaves_nothing_behind(
    session: Session, video: Video, fake_ingest: FakeIngest, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dets, sightings = fake_ingest.chunks[0]

    def boom(*args: object, **kwargs: object) -> int:
        raise OSError("disk vanished")  # after the INSERTs, before the commit

    monkeypatch.setattr(chunks, "_refresh_tracks", boom)
    with pytest.raises(OSError):
        repo.commit_chunk(
            session=session, video_id=video.id, frames_done=50, detections=dets, sightings=sightings
        )
    assert counts(session) == (0, 0, 0)
    assert repo.get_video(session=session, video_id=video.id).frames_done == 0
    monkeypatch.undo()
    assert len(fake_ingest.run(session, video.id)) == 6


def test_commit_chunk_refuses_pipeline_bugs(session: Session, video: Video) -> None:
    dets = make_detections({1: range(0, 10)})
    with pytest.raises(ValueError, match="outside the committed range"):
        repo.commit_chunk(session=session, video_id=video.id, frames_done=5, detections=dets)
    untracked = make_detections({1: range(0, 3)})
    untracked.track_id = None
    with pytest.raises(ValueError, match="track_id"):
        repo.commit_chunk(session=session, video_id=video.id, frames_done=5, detections=untracked)
    with pytest.raises(ValueError, match="no stored detections"):
        repo.commit_chunk(
            session=session,
            video_id=video.id,
            frames_done=10,
            detections=dets,
            sightings=make_sightings([(7, 3)]),
        )
    with pytest.raises(ValueError, match="no detection"):
        repo.commit_chunk(
            session=session,
            video_id=video.id,
            frames_done=10,
            detections=dets,
            sightings=make_sightings([(1, 30)]),
        )
    assert counts(session) == (0, 0, 0)  # each failure rolled back
    with pytest.raises(ReidTraceError) as err:
        repo.commit_chunk(session=session, video_id=424242, frames_done=1, detections=dets[:0])
    assert err.value.status == 404


def test_dimension_change_for_the_same_embedder_is_refused(
    session: Session, video: Video, fake_ingest: FakeIngest
) -> None:
    fake_ingest.run(session, video.id)
    bigger = make_sightings([(3, 80)])[0].model_copy(update={"vector": np.ones(16, np.float32)})
    with pytest.raises(ReidTraceError, match="16-d"):
        repo.commit_chunk(
            session=session,
            video_id=video.id,
            frames_done=100,
            detections=make_detections({}),
            sightings=[bigger],
        )


@pytest.mark.parametrize("other", ["aaa-000000000000", "zzz-000000000000"])
def test_vectors_of_a_second_model_are_refused_before_anything_is_written(
    session: Session, video: Video, fake_ingest: FakeIngest, other: str
) -> None:
    """Whatever path writes (CLI, worker, a direct ingest_video), one store holds one model:
    the check sits where every vector is written. Both sides of the model index are searched."""
    fake_ingest.run(session, video.id)
    before = counts(session)
    stored = session.scalar(select(Sighting.model).limit(1))
    second = make_sightings([(3, 80)])[0].model_copy(update={"model": other})
    with pytest.raises(ReidTraceError, match=f"model {stored!r}.*refusing.*{other!r}") as err:
        repo.commit_chunk(
            session=session,
            video_id=video.id,
            frames_done=100,
            detections=make_detections({}),
            sightings=[second],
        )
    assert stored in err.value.hint
    assert counts(session) == before


def test_resume_and_rewind(session: Session, video: Video, fake_ingest: FakeIngest) -> None:
    frames_done, dets, _ = fake_ingest.chunks[0]
    # chunk 1 committed without the sightings of track 2 (its crops were still in memory)
    repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=frames_done,
        detections=dets,
        sightings=make_sightings([(1, 5), (1, 25)], seed=1),
        checkpoint=b"state at frame 50",
    )
    assert repo.video_checkpoint(session=session, video_id=video.id) == (50, b"state at frame 50")
    state = repo.resume_state(session=session, video_id=video.id)
    assert (state.frames_done, state.next_track_no, state.unfinished_from) == (50, 3, 10)

    removed = repo.delete_video_rows_after(session=session, video_id=video.id, frame=20)
    assert removed.detections == 10 + 30  # track 1 frames 20..29, track 2 frames 20..49
    assert len(removed.sighting_ids) == 1  # the crop of track 1 at frame 25
    assert removed.tracks == 0
    session.expunge_all()
    tracks = {t.track_no: t for t in repo.tracks_for_video(session=session, video_id=video.id)}
    assert (tracks[1].end_frame, tracks[1].num_detections) == (19, 20)
    assert (tracks[2].start_frame, tracks[2].end_frame) == (10, 19)
    one = repo.sightings_for_track(session=session, track_id=tracks[1].id)
    np.testing.assert_allclose(repo.track_embedding(tracks[1]), repo.decode_vector(one[0].vector))
    assert repo.get_video(session=session, video_id=video.id).frames_done == 20
    # the saved state belonged to frame 50: resuming from it at frame 20 would be wrong
    assert repo.video_checkpoint(session=session, video_id=video.id) == (20, None)

    removed = repo.delete_video_rows_after(session=session, video_id=video.id, frame=5)
    assert removed.tracks == 1  # track 2 started at frame 10: gone
    assert repo.resume_state(session=session, video_id=video.id).frames_done == 5
    # re-running from the rewind point is a plain insert again
    out = repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=50,
        detections=dets[dets.frame_idx >= 5],
        sightings=make_sightings([(1, 25), (2, 15)], seed=3),
    )
    assert out.detections_ignored == 0 and len(out.sighting_ids) == 2
    assert counts(session) == (2, 30 + 40, 2)  # the frame-5 crop went with the rewind


def test_delete_video_cascades(session: Session, video: Video, fake_ingest: FakeIngest) -> None:
    ids = fake_ingest.run(session, video.id)
    gone = repo.delete_video(session=session, video_id=video.id)
    assert gone.sighting_ids == ids and gone.detections == 130 and gone.tracks == 3
    assert counts(session) == (0, 0, 0)


def test_sighting_ids_are_never_reused(
    session: Session, video: Video, fake_ingest: FakeIngest
) -> None:
    """FAISS ids are sighting ids: after deleting the newest rows, new ids must be fresh."""
    ids = fake_ingest.run(session, video.id)
    repo.delete_video_rows_after(session=session, video_id=video.id, frame=60)
    _, chunk2, s2 = fake_ingest.chunks[1]
    redo = repo.commit_chunk(
        session=session,
        video_id=video.id,
        frames_done=100,
        detections=chunk2,
        sightings=[s for s in s2 if s.frame_idx >= 60],
    )
    assert min(redo.sighting_ids) > max(ids)


def test_vector_batches_and_lookups(
    session: Session, video: Video, fake_ingest: FakeIngest
) -> None:
    ids = fake_ingest.run(session, video.id)
    batches = list(repo.all_sighting_vectors(session=session, model=MODEL, batch=4))
    assert [len(b[0]) for b in batches] == [4, 2]
    got_ids = np.concatenate([b[0] for b in batches])
    vecs = np.concatenate([b[1] for b in batches])
    assert got_ids.tolist() == ids and vecs.shape == (6, DIM) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-6)
    assert list(repo.all_sighting_vectors(session=session, model="other")) == []
    some, v = repo.sighting_vectors(session=session, ids=[ids[3], 10**9, ids[1]])
    assert some.tolist() == [ids[1], ids[3]]
    np.testing.assert_array_equal(v, vecs[[1, 3]])
    hits = repo.sightings_by_ids(session=session, ids=[ids[0], -1, 10**9])
    assert list(hits) == [ids[0]]
    assert repo.sighting_thumbnail(session=session, sighting_id=ids[0]) == b"\xff\xd8jpeg"
    with pytest.raises(ReidTraceError):
        repo.sighting_thumbnail(session=session, sighting_id=10**9)


def test_tracks_for_camera_filters_by_time(
    session: Session, camera: Camera, video: Video, fake_ingest: FakeIngest
) -> None:
    fake_ingest.run(session, video.id)
    everything = repo.tracks_for_camera(session=session, camera_id=camera.id)
    assert [t.track_no for t in everything] == [1, 2, 3]
    late = repo.tracks_for_camera(
        session=session, camera_id=camera.id, start=START + timedelta(seconds=7.5)
    )
    assert [t.track_no for t in late] == [3]
    early = repo.tracks_for_camera(session=session, camera_id=camera.id, end=START)
    assert [t.track_no for t in early] == [1]


def test_jobs_and_index_state(session: Session) -> None:
    job = repo.create_job(session=session, kind="ingest", params={"path": "/v.mp4"})
    repo.update_job(session=session, job_id=job.id, status="running", progress={"frames": 10})
    session.expunge_all()
    got = repo.get_job(session=session, job_id=job.id)
    assert (got.status, got.progress, got.params) == ("running", {"frames": 10}, {"path": "/v.mp4"})
    assert got.created_at.tzinfo is not None
    assert [j.id for j in repo.list_jobs(session=session, status="running")] == [job.id]
    with pytest.raises(ValueError):
        repo.update_job(session=session, job_id=job.id, status="nope")
    assert repo.get_index_state(session=session) is None
    repo.set_index_state(session=session, generation=3, count=5, embedder=MODEL, path="/i")
    repo.set_index_state(session=session, generation=4, count=6, embedder=MODEL, path="/i")
    state = repo.get_index_state(session=session)
    assert state is not None and (state.generation, state.count) == (4, 6)


def test_naive_datetimes_are_refused(session: Session, camera: Camera) -> None:
    video = Video(
        camera_id=camera.id,
        path="/x",
        content_hash="0" * 64,
        start_time=datetime(2024, 1, 1),
        fps=1,
        num_frames=1,
        width=1,
        height=1,
    )
    session.add(video)
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()
    session.rollback()
    video.start_time = datetime(2024, 1, 1, 16, tzinfo=timezone(timedelta(hours=2)))
    session.add(video)
    session.commit()
    session.expunge_all()
    assert session.get(Video, video.id).start_time == datetime(2024, 1, 1, 14, tzinfo=UTC)
