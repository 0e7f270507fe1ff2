"""Constructed tracks for the query tests: people walking on a ground plane, seen by cameras.

Stores written by hand (ORM rows), not by ingestion, so each test states exactly which tracks
exist, when, where and how alike they look.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy.orm import Session

from indexer.query.persons import TrackInfo
from indexer.store import repo
from indexer.store.models import Camera, Detection, Sighting, Track, Video
from tests.indexer.conftest import START

DIM = 8


def look(k: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Appearance ``k`` (orthogonal basis vectors), optionally perturbed, unit length."""
    v = np.zeros(DIM, np.float32)
    v[k % DIM] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def near(k: int, cosine: float, away: int = DIM - 1) -> np.ndarray:
    """A unit vector whose cosine with ``look(k)`` is exactly ``cosine``."""
    v = np.zeros(DIM, np.float32)
    v[k % DIM] = cosine
    v[away % DIM] = np.sqrt(1 - cosine**2)
    return v


def walk(t0: float, t1: float, p0: tuple[float, float], p1: tuple[float, float], fps: float = 10):
    """Times (s after START) and foot points of a straight walk from p0 to p1."""
    t = np.arange(t0, t1 + 1e-9, 1.0 / fps)
    f = (t - t0) / max(t1 - t0, 1e-9)
    xy = np.stack([p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1])], axis=1)
    return t, xy


def info(
    tid: int,
    camera: str,
    t0: float,
    t1: float,
    emb: np.ndarray | None,
    path: tuple[tuple[float, float], tuple[float, float]] | None = None,
    person: int | None = None,
) -> TrackInfo:
    """A ``TrackInfo`` (times in seconds after START); ``path`` gives it foot points."""
    base = START.timestamp()
    t = xy = None
    if path is not None:
        ts, xy = walk(t0, t1, *path)
        t = ts + base
    return TrackInfo(tid, camera, base + t0, base + t1, emb, t, xy, person)


class StoreBuilder:
    """Cameras, one done video each, and tracks with detections (foot points) in a session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.videos: dict[str, Video] = {}
        self.track_no = 0

    def camera(self, name: str, *, ground: bool = True) -> Camera:
        cam = repo.get_or_create_camera(
            session=self.session,
            name=name,
            width=640,
            height=480,
            fps=10.0,
            homography=[[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]] if ground else None,
            ground_units="m" if ground else None,
        )
        video = repo.create_video(
            session=self.session,
            camera_id=cam.id,
            path=f"/v/{name}.mp4",
            content_hash=name.encode().hex().ljust(64, "0")[:64],
            start_time=START,
            fps=10.0,
            num_frames=100_000,
            width=640,
            height=480,
        )
        video.status = "done"
        self.session.commit()
        self.videos[name] = video
        return cam

    def track(
        self,
        camera: str,
        t0: float,
        t1: float,
        emb: np.ndarray | None,
        path: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (5.0, 0.0)),
    ) -> Track:
        """A track of ``camera`` from t0 to t1 s after START, walking ``path``."""
        video = self.videos[camera]
        self.track_no += 1
        ts, xy = walk(t0, t1, *path)
        frames = np.round(ts * 10).astype(int)
        track = Track(
            video_id=video.id,
            camera_id=video.camera_id,
            track_no=self.track_no,
            start_frame=int(frames[0]),
            end_frame=int(frames[-1]),
            start_time=START + timedelta(seconds=t0),
            end_time=START + timedelta(seconds=float(ts[-1])),
            num_detections=len(ts),
            embedding=None if emb is None else repo.encode_vector(emb),
        )
        self.session.add(track)
        self.session.flush()
        ground = video.camera.homography is not None
        self.session.add_all(
            Detection(
                track_id=track.id,
                video_id=video.id,
                frame_idx=int(f),
                time=START + timedelta(seconds=float(t)),
                x1=100.0,
                y1=100.0,
                x2=140.0,
                y2=200.0,
                confidence=0.9,
                foot_x=float(x) if ground else None,
                foot_y=float(y) if ground else None,
            )
            for f, t, (x, y) in zip(frames, ts, xy, strict=True)
        )
        self.session.commit()
        return track

    def sightings(self, track: Track, looks: dict[int, np.ndarray]) -> None:
        """Embedded crops of ``track``: ``{frame_idx: vector}`` (frames the track has), and the
        track's embedding set to their mean, as ingestion leaves them."""
        by_frame = {
            d.frame_idx: d
            for d in repo.detections_for_track(session=self.session, track_id=track.id)
        }
        self.session.add_all(
            Sighting(
                track_id=track.id,
                detection_id=by_frame[f].id,
                vector=repo.encode_vector(v),
                dim=len(v),
                model="fake-embedder",
                quality=1.0,
            )
            for f, v in looks.items()
        )
        self.session.flush()
        repo.track_embedding_update(session=self.session, track_ids=[track.id])
