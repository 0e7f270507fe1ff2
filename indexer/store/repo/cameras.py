"""Cameras: created once by name, then read; a camera's homography never changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from indexer.store.models import Camera
from reid.errors import ReidTraceError
from reid.geometry import as_homography

__all__ = ["get_camera", "get_camera_by_name", "get_or_create_camera", "list_cameras"]


def get_or_create_camera(
    *,
    session: Session,
    name: str,
    width: int,
    height: int,
    fps: float,
    homography: Any = None,
    ground_units: str | None = None,
) -> Camera:
    """The camera called ``name``; created with these properties when it is new.

    An existing camera is returned unchanged: its stored homography keeps the meaning of the
    foot points already written.
    """
    found = get_camera_by_name(session=session, name=name)
    if found is not None:
        return found
    if not name or width <= 0 or height <= 0 or fps <= 0:
        raise ReidTraceError(
            f"bad camera {name!r}: width={width}, height={height}, fps={fps}",
            hint="a camera needs a name, a positive frame size and a positive frame rate",
        )
    if ground_units not in (None, "m"):
        raise ReidTraceError(
            f"camera {name!r}: ground_units must be 'm' or None, got {ground_units!r}",
            hint="homographies map image pixels to metres on the ground",
        )
    h = None if homography is None else as_homography(homography, name=f"camera {name} homography")
    camera = Camera(
        name=name,
        width=int(width),
        height=int(height),
        fps=float(fps),
        homography=None if h is None else h.tolist(),
        ground_units=ground_units,
    )
    session.add(camera)
    try:
        session.commit()
    except IntegrityError:  # another process created it between our SELECT and INSERT
        session.rollback()
        found = get_camera_by_name(session=session, name=name)
        if found is None:
            raise
        return found
    return camera


def get_camera_by_name(*, session: Session, name: str) -> Camera | None:
    return session.scalars(select(Camera).where(Camera.name == name)).one_or_none()


def get_camera(*, session: Session, camera_id: int) -> Camera:
    camera = session.get(Camera, camera_id)
    if camera is None:
        raise ReidTraceError(
            f"no camera with id {camera_id}", hint="list the cameras to see the ids", status=404
        )
    return camera


def list_cameras(*, session: Session) -> list[Camera]:
    return list(session.scalars(select(Camera).order_by(Camera.name)))
