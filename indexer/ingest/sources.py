"""What to ingest: video files, folders of videos, frame folders, and their cameras.

A folder written by ``reidtrace synth`` (or laid out the same way) carries a ``cameras.json``
that names each video's camera, start time, frame rate and ground homography; otherwise the
camera is ``--camera`` (or the file's stem) and the start time ``--start`` (or, failing both,
the file's modification time, which the report flags). A camera's zones (``reid.zones``) come
from its ``zones`` entry in ``cameras.json``, or from ``--zone`` for every source of a run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from reid.errors import ReidTraceError
from reid.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from reid.zones import Zones


@dataclass(frozen=True)
class Source:
    path: Path
    camera: str
    start_time: datetime | None  # None: take the file's modification time
    fps: float | None = None  # None: the container's frame rate
    homography: list | None = None  # image -> ground (metres)
    gt_path: Path | None = None  # MOTChallenge truth beside it (for the oracle detector)
    zones: Zones = field(default_factory=Zones)  # where boxes are kept; empty: everywhere


def parse_start(value: str | None) -> datetime | None:
    """An ISO 8601 time; naive times are taken as UTC."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise ReidTraceError(
            f"start time {value!r} is not ISO 8601", hint="e.g. 2024-05-01T08:00:00Z"
        ) from err
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _from_cameras_json(folder: Path) -> list[Source]:
    path = folder / "cameras.json"
    try:
        cams = json.loads(path.read_text())["cameras"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ReidTraceError(
            f"{path} is not a valid cameras.json: {err}", hint="see README"
        ) from err
    out = []
    for c in cams:
        try:
            video = folder / c["video"]
            gt = folder / c["gt"] if c.get("gt") else None
            out.append(
                Source(
                    path=video,
                    camera=str(c["name"]),
                    start_time=parse_start(c.get("start_time")),
                    fps=float(c["fps"]) if c.get("fps") else None,
                    homography=c.get("H_image_to_ground"),
                    gt_path=gt if gt is not None and gt.is_file() else None,
                    zones=Zones.from_json(c.get("zones"), where=f"{path} camera {c['name']}"),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ReidTraceError(f"{path}: camera entry {c!r} is incomplete ({err})") from err
    return out


def _is_frame_folder(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def discover_sources(
    paths: list[str | Path],
    *,
    camera: str | None = None,
    start: str | None = None,
    zones: Zones | None = None,
    fps: float | None = None,
) -> list[Source]:
    """Expand the user's paths into sources, in a stable order; unknown paths are errors.

    ``zones`` (the CLI's ``--zone``), when given and not empty, replace every source's own;
    ``fps`` is the frame rate of frame-image folders without one of their own (a folder does
    not say its rate; a MOT sequence's seqinfo.ini does); videos keep their container's."""
    if not paths:
        raise ReidTraceError("nothing to ingest", hint="give video files or folders")
    start_time = parse_start(start)
    out: list[Source] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise ReidTraceError(f"{p} does not exist", hint="check the path")
        if p.is_dir() and (p / "cameras.json").is_file():
            out.extend(_from_cameras_json(p))
        elif p.is_dir() and _is_frame_folder(p):
            out.append(Source(p, camera or p.name, start_time))
        elif p.is_dir():
            files = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not files:
                raise ReidTraceError(
                    f"{p} holds no videos, frame images or cameras.json",
                    hint=f"video extensions: {' '.join(sorted(VIDEO_EXTENSIONS))}",
                )
            for f in files:  # a sub-folder per camera, else one camera per file
                name = camera or (f.parent.name if f.parent != p else f.stem)
                out.append(Source(f, name, start_time))
        else:
            out.append(Source(p, camera or p.stem, start_time))
    if fps is not None and not fps > 0:
        raise ReidTraceError(f"fps must be > 0, got {fps}", hint="e.g. 25 (seqinfo.ini frameRate)")
    if zones:
        out = [replace(s, zones=zones) for s in out]
    if fps is not None:
        out = [replace(s, fps=fps) if s.path.is_dir() and s.fps is None else s for s in out]
    return out
