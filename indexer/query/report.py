"""A trace as one self-contained HTML page, for people who would rather look than read.

``render_report(trace, source)`` draws the document that ``reidtrace trace --json`` prints (the
trace schema of issue 22: subject, model, contact definition, trajectory, contacts, notes) as a
page with the subject's pictures, a timeline per camera, the ground path on a site plan, the
trajectory table and the ranked contact list with the evidence frames that prove each contact.
``write_report`` writes it atomically. Pictures come from a :class:`~indexer.protocols.ReportSource`
(:class:`SqlReportSource` over the store and the footage; a fake in tests).

Why the page looks the way it does:

* **Self-contained.** Inline CSS, every picture a base64 ``data:`` URI, no script, no external
  URL: a report is mailed, archived and opened offline, and must show the same thing years later.
* **Hand-written SVG** for the timeline and the site plan rather than matplotlib: serving has no
  plotting dependency (matplotlib is not a core dependency), and vector output stays crisp at
  any zoom and in print.
* **Everything escaped** (``html.escape``): camera names, paths and notes are user input.
* **Missing pieces are said, not fatal.** A moved video, a camera without homography, a sighting
  without thumbnail: the page says what is missing where the picture would be.
"""

from __future__ import annotations

import base64
import html
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.protocols import ReportSource
from indexer.store import repo
from indexer.store.models import Sighting
from indexer.store.schemas import CameraPublic
from reid.errors import ReidTraceError
from reid.geometry import apply_homography, as_homography, camera_position
from reid.video import read_frames_at

__all__ = ["SqlReportSource", "render_report", "write_report"]

TRACE_KEYS = ("subject", "model", "contact_definition", "trajectory", "contacts", "notes")
"""Top-level keys of a trace document (``reidtrace trace --json``); all are required."""

SUBJECT_COLOR = "#1c64c8"
CONTACT_COLORS = (
    "#e8590c",
    "#2b8a3e",
    "#ae3ec9",
    "#c92a2a",
    "#0b7285",
    "#a07c00",
    "#5f3dc4",
    "#d6336c",
    "#5c940d",
    "#495057",
)
"""One colour per contact, shared by the timeline, the site plan, the list and the evidence
boxes (the subject is always blue, so blue is not among them)."""

VIA_UNKNOWN_COLOR = "#212529"
"""The box of the contact an order-2 contact came through, when the trace does not say who."""

FRAME_BATCH = 32
"""Evidence frames fetched per call: bounds memory (a batch of 1080p frames is ~200 MB)."""

EVIDENCE_HEIGHT = 200
"""Height in pixels of an evidence crop: people 40-200 px tall become readable, not huge."""

FOOTPRINT_MIN_W = 0.1
"""A camera's ground footprint stops where the projective depth falls under this share of its
largest value in the image: near the horizon the footprint runs off to infinity."""

_HINT_TRACE = "pass the document `reidtrace trace --json` prints (the trace schema of issue 22)"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;
margin:0;background:#f4f5f7}
main{max-width:1240px;margin:0 auto;padding:20px 28px 40px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid
#d5d9e0;padding-bottom:4px}h3{font-size:16px;margin:0}
.sub{color:#5b6473;margin:0 0 16px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px}
.subject{display:flex;gap:22px;align-items:flex-start;flex-wrap:wrap}
figure{margin:0}figcaption{font-size:12px;color:#5b6473;margin-top:3px;max-width:260px;
overflow-wrap:anywhere}
.pic{height:180px;border-radius:4px;border:1px solid #c9ced6;background:#e9ecef;display:block}
.missing{display:flex;align-items:center;justify-content:center;text-align:center;
font-size:12px;color:#7a8391;background:#eceef1;border:1px dashed #b8bec8;border-radius:4px;
padding:6px;box-sizing:border-box}
table{border-collapse:collapse}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#5b6473;font-weight:600;white-space:nowrap}
table.rows td,table.rows th{border-bottom:1px solid #e6e9ee;padding:4px 12px 4px 0}
.notes{margin:10px 0 0;padding-left:18px;color:#8a4b00}
.legend{font-size:12px;color:#5b6473;margin:6px 0 0}
.sw{display:inline-block;width:14px;height:10px;border-radius:2px;vertical-align:middle;
margin-right:4px}
svg{display:block;width:100%;height:auto;background:#fff}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.contact{display:grid;grid-template-columns:42px 110px 1fr;gap:6px 16px;margin:0 0 12px}
.rank{font-size:20px;font-weight:700;border-left:6px solid;padding-left:8px;height:36px}
.thumb{height:150px;max-width:110px;object-fit:contain;border-radius:4px;background:#e9ecef}
.evidence{grid-column:2/4;display:flex;flex-wrap:wrap;gap:10px}
.evidence img{max-height:220px;border-radius:4px;display:block}
.evidence figure{display:table}.evidence figcaption{display:table-caption;caption-side:bottom}
.xbar{width:320px;height:8px;background:#eceef1;border-radius:4px;margin:6px 0 4px}
.xbar span{display:block;height:8px;border-radius:4px}
.muted{color:#7a8391}
"""


# --------------------------------------------------------------------------- the SQL source


class SqlReportSource:
    """:class:`~indexer.protocols.ReportSource` over the SQL store and the footage on disk.

    Thumbnails are ``Sighting.thumbnail``; frames are read from ``Video.path`` (a video file or a
    frame folder) with OpenCV. The session is the caller's (the CLI opens one per command).
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def cameras(self) -> list[CameraPublic]:
        return [CameraPublic.model_validate(c) for c in repo.list_cameras(session=self.session)]

    def thumbnail(self, sighting_id: int) -> bytes | None:
        try:
            return repo.sighting_thumbnail(session=self.session, sighting_id=int(sighting_id))
        except ReidTraceError:
            return None  # a sighting deleted since the trace was made: no picture, no failure

    def track_thumbnail(self, track_ids: Sequence[int]) -> bytes | None:
        ids = [int(t) for t in track_ids]
        if not ids:
            return None
        stmt = (
            select(Sighting.thumbnail)
            .where(Sighting.track_id.in_(ids), Sighting.thumbnail.is_not(None))
            .order_by(Sighting.quality.desc(), Sighting.id)
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def frames(self, video_id: int, frame_idxs: Sequence[int]) -> dict[int, np.ndarray]:
        video = repo.get_video(session=self.session, video_id=int(video_id))
        if video.kind == "crops":
            raise ReidTraceError(
                f"video {video.id} is a Market-format folder of crops: it has no frames",
                hint="crops carry no scene to show; their thumbnails are the evidence",
            )
        return read_frames_at(video.path, frame_idxs)


# --------------------------------------------------------------------------- small helpers


def _e(value: object) -> str:
    """Escaped text for HTML and SVG (attributes included): user input never becomes markup."""
    return html.escape("" if value is None else str(value), quote=True)


def _time(value: object, where: str) -> datetime | None:
    """An ISO-8601 time of the trace as an aware UTC datetime (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise ReidTraceError(
            f"trace {where}: {value!r} is not an ISO-8601 time", hint=_HINT_TRACE
        ) from err
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _clock(t: datetime | None) -> str:
    """08:00:11.2 (tenths: evidence frames are 1/fps apart)."""
    if t is None:
        return "?"
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 100_000}"


def _seconds(value: object) -> str:
    return "?" if value is None else f"{float(value):.1f} s"


def _distance(value: object, units: str) -> str:
    if value is None or units == "co-appearance":
        return "same camera, same time"
    if units == "m":
        return f"{float(value):.2f} m"
    return f"{float(value):.2f} box heights"


def _jpeg_uri(data: bytes | None) -> str | None:
    """A data URI for JPEG bytes, or ``None`` when they do not decode (a broken thumbnail)."""
    if not data:
        return None
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _encode_jpeg(img: np.ndarray, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {img.shape} image as JPEG")
    return _jpeg_uri(buf.tobytes()) or ""


def _missing(text: str, width: int, height: int) -> str:
    return f'<div class="missing" style="width:{width}px;height:{height}px">{_e(text)}</div>'


def _figure(uri: str | None, caption: str, missing: str, *, cls: str = "pic") -> str:
    body = (
        f'<img class="{cls}" src="{uri}" alt="{_e(caption)}">'
        if uri
        else _missing(missing, 140, 180)
    )
    return f"<figure>{body}<figcaption>{_e(caption)}</figcaption></figure>"


def _box(value: object) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    return arr if arr.size == 4 and np.isfinite(arr).all() else None


# --------------------------------------------------------------------------- the trace, parsed


@dataclass
class _Visit:
    camera: str
    enter: datetime | None
    leave: datetime | None
    raw: Mapping[str, Any]


@dataclass
class _Contact:
    rank: int
    color: str
    label: str
    raw: Mapping[str, Any]
    first: datetime | None
    last: datetime | None
    # camera -> (first, last) time within d there, from the evidence frames
    spans: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    # whom the evidence's "subject_box" shows: the subject for order 1; for order 2 and up the
    # contact it came through (find_contacts measures a contact of a contact from that person)
    near_label: str = "the subject"
    near_color: str = SUBJECT_COLOR
    pictures: dict[int, str] = field(default_factory=dict)  # evidence index -> HTML figure


def _check(trace: object) -> Mapping[str, Any]:
    if not isinstance(trace, Mapping):
        raise ReidTraceError(
            f"a trace report needs a trace document (a JSON object), got {type(trace).__name__}",
            hint=_HINT_TRACE,
        )
    missing = [k for k in TRACE_KEYS if k not in trace]
    if missing:
        raise ReidTraceError(f"the trace has no {', '.join(missing)}", hint=_HINT_TRACE)
    for key in ("trajectory", "contacts", "notes"):
        if not isinstance(trace[key], list):
            raise ReidTraceError(f"trace {key} must be a list", hint=_HINT_TRACE)
    for key in ("trajectory", "contacts"):
        for k, row in enumerate(trace[key]):
            if not isinstance(row, Mapping) or not isinstance(row.get("evidence", []), list):
                raise ReidTraceError(f"trace {key}[{k}] is not a {key} entry", hint=_HINT_TRACE)
    for key in ("subject", "contact_definition"):
        if not isinstance(trace[key], Mapping):
            raise ReidTraceError(f"trace {key} must be an object", hint=_HINT_TRACE)
    return trace


def _person_label(raw: Mapping[str, Any]) -> str:
    if raw.get("person_id") is not None:
        return f"person {raw['person_id']}"
    tracks = [str(t) for t in raw.get("track_ids") or []]
    if not tracks:
        return "nobody found"
    return f"track{'s' if len(tracks) > 1 else ''} {', '.join(tracks)}"


def _contacts(trace: Mapping[str, Any]) -> list[_Contact]:
    """Contacts ranked as ``find_contacts`` ranks them: direct contacts first, then by
    exposure (stable: the trace's order breaks ties); each gets its colour."""
    rows = sorted(
        enumerate(trace["contacts"]),
        key=lambda r: (int(r[1].get("order") or 1), -float(r[1].get("exposure_s") or 0), r[0]),
    )
    out = []
    for rank, (_, raw) in enumerate(rows, start=1):
        c = _Contact(
            rank=rank,
            color=CONTACT_COLORS[(rank - 1) % len(CONTACT_COLORS)],
            label=_person_label(raw),
            raw=raw,
            first=_time(raw.get("first"), f"contact {rank} first"),
            last=_time(raw.get("last"), f"contact {rank} last"),
        )
        by_cam: dict[str, list[datetime]] = defaultdict(list)
        for k, ev in enumerate(raw.get("evidence") or []):
            t = _time(ev.get("time"), f"contact {rank} evidence {k} time")
            if t is not None:
                by_cam[str(ev.get("camera"))].append(t)
        c.spans = {cam: (min(ts), max(ts)) for cam, ts in by_cam.items()}
        out.append(c)
    for c in out:
        order = int(c.raw.get("order") or 1)
        if order < 2:
            continue
        via = c.raw.get("via_person_id")
        through = next(
            (
                v
                for v in out
                if via is not None
                and v.raw.get("person_id") == via
                and int(v.raw.get("order") or 1) == order - 1
            ),
            None,
        )
        c.near_label = f"person {via}" if via is not None else "a contact with no person id"
        c.near_color = through.color if through is not None else VIA_UNKNOWN_COLOR
    return out


def _camera_order(visits: list[_Visit], contacts: list[_Contact]) -> list[str]:
    """Cameras in the order the subject first entered them, then those only contacts saw."""
    cams: list[str] = []
    for v in sorted(visits, key=lambda v: v.enter or datetime.max.replace(tzinfo=UTC)):
        if v.camera not in cams:
            cams.append(v.camera)
    for c in contacts:
        for cam in [*c.spans, *(str(p.get("camera")) for p in c.raw.get("per_camera") or [])]:
            if cam not in cams:
                cams.append(cam)
    return cams


# --------------------------------------------------------------------------- evidence pictures


def _evidence_crop(
    frame: np.ndarray,
    subject_box: np.ndarray | None,
    contact_box: np.ndarray | None,
    color: str,
    label: str,
    near_color: str = SUBJECT_COLOR,
) -> np.ndarray:
    """The frame cropped around both people, their boxes drawn (subject blue, or for a contact
    of a contact the one it came through, in that one's colour; the contact in its colour),
    the feet joined by a line labelled with the distance."""
    h, w = frame.shape[:2]
    boxes = [b for b in (subject_box, contact_box) if b is not None]
    if boxes:
        stack = np.stack(boxes)
        x1, y1 = stack[:, 0].min(), stack[:, 1].min()
        x2, y2 = stack[:, 2].max(), stack[:, 3].max()
        margin = max(20.0, 0.5 * float((stack[:, 3] - stack[:, 1]).max()))
        x1, y1, x2, y2 = x1 - margin, y1 - margin, x2 + margin, y2 + margin
    else:
        x1, y1, x2, y2 = 0.0, 0.0, float(w), float(h)
    # keep the window's size and slide it inside the frame: people at an edge stay centred-ish
    # instead of being cut to a thin strip
    win_w, win_h = min(float(w), x2 - x1), min(float(h), y2 - y1)
    x1 = float(np.clip(x1, 0, w - win_w))
    y1 = float(np.clip(y1, 0, h - win_h))
    cx0, cy0 = int(math.floor(x1)), int(math.floor(y1))
    cx1, cy1 = min(w, int(math.ceil(x1 + win_w))), min(h, int(math.ceil(y1 + win_h)))
    if cx1 - cx0 < 8 or cy1 - cy0 < 8:  # boxes outside the frame: show all of it
        cx0, cy0, cx1, cy1 = 0, 0, w, h
    crop = frame[cy0:cy1, cx0:cx1]
    scale = min(EVIDENCE_HEIGHT / crop.shape[0], 2.2 * EVIDENCE_HEIGHT / crop.shape[1], 4.0)
    out = cv2.resize(
        crop,
        (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )

    def bgr(hex_color: str) -> tuple[int, int, int]:
        r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
        return b, g, r

    def to_crop(box: np.ndarray) -> np.ndarray:
        return (box - np.array([cx0, cy0, cx0, cy0])) * scale

    feet = []
    for box, col in ((subject_box, near_color), (contact_box, color)):
        if box is None:
            continue
        b = to_crop(box)
        p1 = (round(b[0]), round(b[1]))
        p2 = (round(b[2]), round(b[3]))
        cv2.rectangle(out, p1, p2, (255, 255, 255), 4, cv2.LINE_AA)
        cv2.rectangle(out, p1, p2, bgr(col), 2, cv2.LINE_AA)
        feet.append((round((b[0] + b[2]) / 2), round(b[3])))
    if len(feet) == 2:
        cv2.line(out, feet[0], feet[1], (255, 255, 255), 2, cv2.LINE_AA)
    if label:
        font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
        (tw, tht), base = cv2.getTextSize(label, font, fs, th)
        if len(feet) == 2:
            mx, my = (feet[0][0] + feet[1][0]) // 2, (feet[0][1] + feet[1][1]) // 2 + 16
        else:
            mx, my = out.shape[1] // 2, out.shape[0] - 8
        tx = int(np.clip(mx - tw // 2, 2, max(2, out.shape[1] - tw - 2)))
        ty = int(np.clip(my, tht + 4, out.shape[0] - base - 2))
        cv2.rectangle(out, (tx - 3, ty - tht - 3), (tx + tw + 3, ty + base + 1), (20, 20, 20), -1)
        cv2.putText(out, label, (tx, ty), font, fs, (255, 255, 255), th, cv2.LINE_AA)
    return out


def _evidence_roles(evidence: list[Mapping[str, Any]]) -> dict[int, str]:
    """first / closest / last per camera, so the captions say why each frame is there."""
    by_cam: dict[str, list[int]] = defaultdict(list)
    for k, ev in enumerate(evidence):
        by_cam[str(ev.get("camera"))].append(k)
    roles: dict[int, list[str]] = defaultdict(list)
    for ks in by_cam.values():
        timed = [k for k in ks if evidence[k].get("time") is not None]
        if timed:
            roles[min(timed, key=lambda k: str(evidence[k]["time"]))].append("first")
        dists = [k for k in ks if evidence[k].get("distance") is not None]
        if dists:
            roles[min(dists, key=lambda k: float(evidence[k]["distance"]))].append("closest")
        if timed:
            roles[max(timed, key=lambda k: str(evidence[k]["time"]))].append("last")
    return {k: ", ".join(dict.fromkeys(v)) for k, v in roles.items()}


def _fill_evidence(
    contacts: list[_Contact], source: ReportSource, cam_units: Mapping[str, str], units: str
) -> None:
    """Every contact's evidence figures, reading each video's frames in batches of
    ``FRAME_BATCH`` (sorted, so a source can read forward) and cropping them at once."""
    wanted: dict[int, list[tuple[_Contact, int]]] = defaultdict(list)
    roles: dict[int, dict[int, str]] = {}
    ev_units: dict[tuple[int, int], str] = {}
    for c in contacts:
        roles[c.rank] = _evidence_roles(c.raw.get("evidence") or [])
        for k, ev in enumerate(c.raw.get("evidence") or []):
            # an evidence distance is in its camera's units (metres only with a homography)
            ev_units[(c.rank, k)] = cam_units.get(
                str(ev.get("camera")), str(c.raw.get("units") or units)
            )
            if ev.get("video_id") is not None and ev.get("frame_idx") is not None:
                wanted[int(ev["video_id"])].append((c, k))
            else:
                c.pictures[k] = _evidence_figure(
                    None, ev, roles[c.rank].get(k, ""), ev_units[(c.rank, k)], "no frame there"
                )
    for video_id, items in sorted(wanted.items()):
        idxs = sorted({int(c.raw["evidence"][k]["frame_idx"]) for c, k in items})
        for start in range(0, len(idxs), FRAME_BATCH):
            batch = idxs[start : start + FRAME_BATCH]
            error = None
            try:
                frames = source.frames(video_id, batch)
            except ReidTraceError as err:
                error, frames = f"video {video_id} unreadable: {err.message}", {}
            for c, k in items:
                ev = c.raw["evidence"][k]
                f = int(ev["frame_idx"])
                if f not in batch:
                    continue
                role, u = roles[c.rank].get(k, ""), ev_units[(c.rank, k)]
                if f not in frames:
                    why = error or f"frame {f} is past the end of video {video_id}"
                    c.pictures[k] = _evidence_figure(None, ev, role, u, why)
                    continue
                dist = ev.get("distance")
                img = _evidence_crop(
                    frames[f],
                    _box(ev.get("subject_box")),
                    _box(ev.get("contact_box")),
                    c.color,
                    "" if dist is None else _distance(dist, u),
                    near_color=c.near_color,
                )
                c.pictures[k] = _evidence_figure(_encode_jpeg(img), ev, role, u)
            del frames  # the next batch's frames replace these, never join them


def _evidence_figure(
    uri: str | None, ev: Mapping[str, Any], role: str, units: str, why: str = ""
) -> str:
    t = _time(ev.get("time"), "evidence time")
    parts = [str(ev.get("camera")), f"frame {ev.get('frame_idx')}", _clock(t)]
    if ev.get("distance") is not None:
        parts.append(_distance(ev.get("distance"), units))
    if role:
        parts.append(role)
    caption = _e(" · ".join(parts))
    pic = f'<img src="{uri}" alt="{caption}">' if uri else _missing(why, 220, EVIDENCE_HEIGHT)
    return f"<figure>{pic}<figcaption>{caption}</figcaption></figure>"


# --------------------------------------------------------------------------- the timeline


_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


def _ticks(t0: float, t1: float, max_ticks: int = 9) -> tuple[list[float], int]:
    span = max(t1 - t0, 1.0)
    step = next(
        (s for s in _TICK_STEPS if span / s <= max_ticks),
        86400 * math.ceil(span / 86400 / max_ticks),
    )
    first = math.ceil(t0 / step) * step
    return [first + k * step for k in range(int((t1 - first) // step) + 1)], step


def _timeline_svg(visits: list[_Visit], contacts: list[_Contact], cameras: list[str]) -> str | None:
    times = [t for v in visits for t in (v.enter, v.leave) if t is not None]
    times += [t for c in contacts for t in (c.first, c.last) if t is not None]
    times += [t for c in contacts for span in c.spans.values() for t in span]
    if not times or not cameras:
        return None
    t0 = min(times).timestamp()
    t1 = max(times).timestamp()
    if t1 - t0 < 1.0:
        t0, t1 = t0 - 0.5, t1 + 0.5
    pad = (t1 - t0) * 0.02
    t0, t1 = t0 - pad, t1 + pad
    width, left, right = 1000, 130, 16
    inner = width - left - right

    def x(t: datetime) -> float:
        return left + (t.timestamp() - t0) / (t1 - t0) * inner

    lanes = []
    y = 10
    bar_h, row_h = 16, 9
    for cam in cameras:
        rows = [c for c in contacts if cam in c.spans or cam in _per_camera(c)]
        lane_h = bar_h + 10 + row_h * len(rows)
        parts = [
            f'<rect x="{left}" y="{y}" width="{inner}" height="{lane_h}" fill="#f6f7f9"/>',
            f'<text x="{left - 10}" y="{y + 13}" text-anchor="end" font-size="13" '
            f'font-weight="600">{_e(cam)}</text>',
        ]
        if rows:
            parts.append(
                f'<text x="{left - 10}" y="{y + 28}" text-anchor="end" font-size="11" '
                f'fill="#7a8391">{len(rows)} contact{"s" if len(rows) > 1 else ""}</text>'
            )
        for v in visits:
            if v.camera != cam or v.enter is None or v.leave is None:
                continue
            xa, xb = x(v.enter), x(v.leave)
            tip = f"subject in {cam}: {_clock(v.enter)} to {_clock(v.leave)}"
            parts.append(
                f'<rect x="{xa:.1f}" y="{y + 4}" width="{max(xb - xa, 2):.1f}" '
                f'height="{bar_h - 4}" rx="2" fill="{SUBJECT_COLOR}">'
                f"<title>{_e(tip)}</title></rect>"
            )
        for r, c in enumerate(rows):
            ry = y + bar_h + 5 + r * row_h
            if cam in c.spans:
                a, b = c.spans[cam]
                style = f'fill="{c.color}"'
                how = f"first to last evidence frame near {c.near_label}"
            elif c.first is not None and c.last is not None:
                a, b = c.first, c.last
                style = f'fill="none" stroke="{c.color}" stroke-dasharray="3 2"'
                how = "no evidence frame here: first to last contact over all cameras"
            else:
                continue
            xa, xb = x(a), x(b)
            tip = f"#{c.rank} {c.label} in {cam}: {_clock(a)} to {_clock(b)} ({how})"
            xb = max(xb, xa + 2)
            # the rank beside the bar links it to the list without hovering (print, screenshots)
            lx, anchor = (xb + 4, "start") if xb + 24 < left + inner else (xa - 4, "end")
            parts.append(
                f'<rect x="{xa:.1f}" y="{ry}" width="{xb - xa:.1f}" height="{row_h - 3}" '
                f"{style}><title>{_e(tip)}</title></rect>"
                f'<text x="{lx:.1f}" y="{ry + row_h - 3}" font-size="8.5" text-anchor="{anchor}" '
                f'fill="{c.color}">#{c.rank}</text>'
            )
        lanes.append("".join(parts))
        y += lane_h + 6
    ticks, step = _ticks(t0, t1)
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%m-%d %H:%M")
    axis = []
    for tick in ticks:
        tx = left + (tick - t0) / (t1 - t0) * inner
        label = datetime.fromtimestamp(tick, UTC).strftime(fmt)
        axis.append(
            f'<line x1="{tx:.1f}" y1="10" x2="{tx:.1f}" y2="{y}" stroke="#c9ced6" '
            f'stroke-width="0.6"/><text x="{tx:.1f}" y="{y + 14}" text-anchor="middle" '
            f'font-size="11" fill="#4a5260">{label}</text>'
        )
    day = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d")
    axis.append(
        f'<text x="{left + inner / 2:.0f}" y="{y + 32}" text-anchor="middle" font-size="12" '
        f'fill="#4a5260">time, UTC ({day})</text>'
    )
    height = y + 40
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="timeline per camera">{"".join(lanes)}{"".join(axis)}</svg>'
    )


def _per_camera(c: _Contact) -> dict[str, float]:
    return {
        str(p.get("camera")): float(p.get("exposure_s") or 0.0)
        for p in c.raw.get("per_camera") or []
    }


# --------------------------------------------------------------------------- the site plan


def _clip_halfplane(poly: np.ndarray, coeffs: np.ndarray, floor: float) -> np.ndarray:
    """Sutherland-Hodgman against one half-plane ``coeffs . (x, y, 1) >= floor`` (hand-written:
    one plane, ten lines, no geometry dependency for it)."""
    out = []
    vals = np.column_stack([poly, np.ones(len(poly))]) @ coeffs - floor
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        vp, vq = vals[i], vals[(i + 1) % len(poly)]
        if vp >= 0:
            out.append(p)
        if (vp >= 0) != (vq >= 0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _footprint(h_i2g: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The ground a camera sees: its image rectangle, cut short of the horizon, on the ground."""
    rect = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    w = np.column_stack([rect, np.ones(4)]) @ h_i2g[2]
    bottom = float(np.array([width / 2, height, 1.0]) @ h_i2g[2])
    sign = 1.0 if bottom >= 0 else -1.0  # the bottom of the image is ground in front
    top = float((sign * w).max())
    if top <= 0:
        return None
    poly = _clip_halfplane(rect, sign * h_i2g[2], FOOTPRINT_MIN_W * top)
    if len(poly) < 3:
        return None
    ground = apply_homography(h_i2g, poly)
    return ground if np.isfinite(ground).all() else None


@dataclass
class _PlanCamera:
    name: str
    h: np.ndarray
    position: tuple[float, float] | None
    footprint: np.ndarray | None


def _nice_length(target: float) -> float:
    exp = 10 ** math.floor(math.log10(target))
    return next(m * exp for m in (5, 2, 1) if m * exp <= target) if target > 0 else 1.0


def _site_plan_svg(
    visits: list[_Visit], contacts: list[_Contact], cameras: Sequence[CameraPublic]
) -> tuple[str | None, list[str]]:
    notes: list[str] = []
    plan_cams: dict[str, _PlanCamera] = {}
    for cam in cameras:
        if cam.homography is None or cam.ground_units != "m":
            continue
        try:
            h = as_homography(cam.homography, name=f"camera {cam.name} homography")
        except ReidTraceError as err:
            notes.append(f"{cam.name}: {err.message}; left off the site plan")
            continue
        pos = camera_position(h, cam.width, cam.height)
        plan_cams[cam.name] = _PlanCamera(
            cam.name, h, None if pos is None else pos[:2], _footprint(h, cam.width, cam.height)
        )
    paths = []
    for v in visits:
        gp = v.raw.get("ground_path")
        if gp:
            pts = np.array([[float(p[1]), float(p[2])] for p in gp], dtype=np.float64)
            pts = pts[np.isfinite(pts).all(axis=1)]
            if len(pts):
                paths.append((v, pts))
    spots = []  # (contact, evidence, ground point) where the contact stood in an evidence frame
    # a contact stands on the plan wherever its camera has a homography (its foot point)
    for c in contacts:
        for ev in c.raw.get("evidence") or []:
            pc = plan_cams.get(str(ev.get("camera")))
            box = _box(ev.get("contact_box"))
            if pc is None or box is None:
                continue
            g = apply_homography(pc.h, np.array([[(box[0] + box[2]) / 2, box[3]]]))[0]
            if np.isfinite(g).all():
                spots.append((c, ev, g))
    if not paths:
        if not plan_cams:
            return None, ["no camera of this trace has a ground homography: no site plan"]
        notes.append("the trajectory has no ground path: the site plan shows the cameras only")
    used = {v.camera for v in visits} | {cam for c in contacts for cam in c.spans}
    plan_cams = {k: v for k, v in plan_cams.items() if k in used} or plan_cams

    pts = [p for _, arr in paths for p in arr] + [g for _, _, g in spots]
    pts += [np.array(pc.position) for pc in plan_cams.values() if pc.position is not None]
    if not pts:
        pts = [p for pc in plan_cams.values() if pc.footprint is not None for p in pc.footprint]
    if not pts:
        return None, [*notes, "no ground positions to draw: no site plan"]
    allp = np.array(pts)
    lo, hi = allp.min(axis=0), allp.max(axis=0)
    centre, extent = (lo + hi) / 2, np.maximum(hi - lo, 10.0) * 1.12
    width, margin = 1000, 20
    aspect = float(np.clip(extent[1] / extent[0], 0.35, 0.8))
    extent = np.maximum(extent, [extent[1] / aspect, extent[0] * aspect])  # equal scales
    height = int(width * aspect)
    scale = (width - 2 * margin) / extent[0]
    x0, y1 = centre[0] - extent[0] / 2, centre[1] + extent[1] / 2

    def sx(p: np.ndarray) -> str:
        return f"{margin + (p[0] - x0) * scale:.1f},{margin + (y1 - p[1]) * scale:.1f}"

    body = [
        '<defs><clipPath id="plan-clip">'
        f'<rect x="0" y="0" width="{width}" height="{height + 2 * margin}"/></clipPath></defs>',
        '<g clip-path="url(#plan-clip)">',
    ]
    bar = _nice_length(extent[0] / 5)
    gx = math.floor(x0 / bar) * bar
    while gx <= x0 + extent[0]:
        px = margin + (gx - x0) * scale
        body.append(
            f'<line x1="{px:.1f}" y1="0" x2="{px:.1f}" y2="{height + 2 * margin}" '
            'stroke="#eef0f3"/>'
        )
        gx += bar
    gy = math.floor((y1 - extent[1]) / bar) * bar
    while gy <= y1:
        py = margin + (y1 - gy) * scale
        body.append(f'<line x1="0" y1="{py:.1f}" x2="{width}" y2="{py:.1f}" stroke="#eef0f3"/>')
        gy += bar
    for pc in plan_cams.values():
        if pc.footprint is not None:
            pts_s = " ".join(sx(p) for p in pc.footprint)
            body.append(
                f'<polygon points="{pts_s}" fill="#868e96" fill-opacity="0.10" stroke="#868e96" '
                f'stroke-opacity="0.5" stroke-dasharray="4 3"><title>{_e(pc.name)}: field of view '
                "on the ground</title></polygon>"
            )
    for v, arr in paths:
        tip = f"subject in {v.camera}: {_clock(v.enter)} to {_clock(v.leave)}"
        line = " ".join(sx(p) for p in arr)
        body.append(
            f'<polyline points="{line}" fill="none" stroke="{SUBJECT_COLOR}" stroke-width="2.5" '
            f'stroke-linejoin="round" stroke-opacity="0.85"><title>{_e(tip)}</title></polyline>'
        )
        a, b = sx(arr[0]).split(","), sx(arr[-1]).split(",")
        body.append(
            f'<circle cx="{a[0]}" cy="{a[1]}" r="5" fill="#fff" stroke="{SUBJECT_COLOR}" '
            f'stroke-width="2"><title>{_e(v.camera)} enter {_clock(v.enter)}</title></circle>'
            f'<circle cx="{b[0]}" cy="{b[1]}" r="5" fill="{SUBJECT_COLOR}">'
            f"<title>{_e(v.camera)} leave {_clock(v.leave)}</title></circle>"
        )
    for c, ev, g in spots:
        q = sx(g).split(",")
        tip = f"#{c.rank} {c.label} at {_clock(_time(ev.get('time'), 'evidence time'))}"
        if ev.get("distance") is not None:
            tip += f", {_distance(ev['distance'], 'm')} from the subject"
        body.append(
            f'<circle cx="{q[0]}" cy="{q[1]}" r="4.5" fill="{c.color}" stroke="#fff" '
            f'stroke-width="1.2"><title>{_e(tip)}</title></circle>'
        )
    for pc in plan_cams.values():
        if pc.position is not None:
            p = sx(np.array(pc.position)).split(",")
            body.append(
                f'<rect x="{float(p[0]) - 6:.1f}" y="{float(p[1]) - 6:.1f}" width="12" '
                f'height="12" rx="2" fill="#343a40"><title>{_e(pc.name)} (position from its '
                "homography)</title></rect>"
                f'<text x="{float(p[0]) + 10:.1f}" y="{float(p[1]) + 4:.1f}" font-size="13" '
                f'font-weight="600" fill="#343a40">{_e(pc.name)}</text>'
            )
        elif pc.footprint is not None:
            p = sx(pc.footprint.mean(axis=0)).split(",")
            body.append(
                f'<text x="{p[0]}" y="{p[1]}" font-size="13" text-anchor="middle" '
                f'fill="#495057">{_e(pc.name)}</text>'
            )
    body.append("</g>")
    bx, by = margin + 10, height + 2 * margin - 16
    bw = bar * scale
    body.append(
        f'<rect x="{bx - 6}" y="{by - 20}" width="{bw + 60:.0f}" height="30" fill="#fff" '
        'fill-opacity="0.85"/>'
        f'<line x1="{bx}" y1="{by}" x2="{bx + bw:.1f}" y2="{by}" stroke="#1d2430" '
        'stroke-width="3"/>'
        f'<line x1="{bx}" y1="{by - 5}" x2="{bx}" y2="{by + 5}" stroke="#1d2430"/>'
        f'<line x1="{bx + bw:.1f}" y1="{by - 5}" x2="{bx + bw:.1f}" y2="{by + 5}" '
        'stroke="#1d2430"/>'
        f'<text x="{bx + bw / 2:.1f}" y="{by - 8}" text-anchor="middle" font-size="12">'
        f"{bar:g} m</text>"
    )
    missing = sorted({v.camera for v in visits} - set(plan_cams))
    if missing:
        notes.append(f"no ground homography for {', '.join(missing)}: not on the site plan")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 2 * margin}" '
        f'role="img" aria-label="site plan">{"".join(body)}</svg>'
    )
    return svg, notes


# --------------------------------------------------------------------------- the page


def _definition(cd: Mapping[str, Any]) -> str:
    units = cd.get("units")
    d, t = cd.get("distance"), cd.get("min_seconds")
    t_text = f"for at least {float(t):g} s in total" if t is not None else ""
    if units == "m":
        text = f"within {float(d):g} m on the ground {t_text}"
    elif units == "box_heights":
        text = f"within {float(d):g} box heights in the image {t_text}"
    else:
        window = cd.get("window_s")
        when = f"within {float(window):g} s of each other" if window is not None else "together"
        text = f"seen in the same camera {when} {t_text} (no ground positions)"
    depth = int(cd.get("depth") or 1)
    return text.strip() + (
        "; depth 2 (contacts of contacts)" if depth >= 2 else "; depth 1 (direct contacts)"
    )


def _query_photo(path: object) -> tuple[str | None, str]:
    """The query photo as a data URI (scaled down), or why it is not shown."""
    if not path:
        return None, ""
    img = cv2.imread(str(path))
    if img is None:
        return None, f"query photo {path} not readable (moved?)"
    if img.shape[0] > 360:
        f = 360 / img.shape[0]
        img = cv2.resize(img, (max(1, round(img.shape[1] * f)), 360), interpolation=cv2.INTER_AREA)
    return _encode_jpeg(img), ""


def _subject_section(
    trace: Mapping[str, Any], source: ReportSource, visits: list[_Visit], contacts: list[_Contact]
) -> str:
    subj = trace["subject"]
    kind = subj.get("kind")
    figs = []
    if kind == "photo" or subj.get("query"):
        uri, why = _query_photo(subj.get("query"))
        figs.append(_figure(uri, f"query photo: {subj.get('query')}", why or "no query photo"))
    track_ids = [int(t) for t in subj.get("track_ids") or []]
    # the most confident visit first: a track that is partly someone else can hold the best-
    # quality crop of all the subject's tracks, and the header must show the subject
    ranked = sorted(visits, key=lambda v: -float(v.raw.get("confidence") or 0.0))
    thumb = None
    for ids in [[int(t) for t in v.raw.get("track_ids") or []] for v in ranked] + [track_ids]:
        if ids and (thumb := _jpeg_uri(source.track_thumbnail(ids))):
            break
    figs.append(_figure(thumb, "best stored crop of the subject's tracks", "no thumbnail stored"))
    cams = sorted({v.camera for v in visits})
    enters = [v.enter for v in visits if v.enter is not None]
    leaves = [v.leave for v in visits if v.leave is not None]
    seen = f"{len(visits)} visit{'s' if len(visits) != 1 else ''} in {len(cams)} camera" + (
        "s" if len(cams) != 1 else ""
    )
    if enters and leaves:
        seen += f", {_clock(min(enters))} to {_clock(max(leaves))} UTC"
    n2 = sum(1 for c in contacts if int(c.raw.get("order") or 1) >= 2)
    rows = [
        ("subject", f"{kind}: {_person_label(subj)}"),
        ("tracks", ", ".join(str(t) for t in track_ids) or "none"),
        ("match score", "n/a" if subj.get("score") is None else f"{float(subj['score']):.3f}"),
        ("model", trace.get("model")),
        ("contact", _definition(trace["contact_definition"])),
        ("seen", seen),
        ("contacts", f"{len(contacts)}" + (f" ({n2} of order 2)" if n2 else "")),
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    notes = "".join(f"<li>{_e(n)}</li>" for n in trace["notes"])
    notes_html = f'<ul class="notes">{notes}</ul>' if notes else ""
    return (
        f'<section class="card subject">{"".join(figs)}<div><table>{table}</table>'
        f"{notes_html}</div></section>"
    )


def _trajectory_table(visits: list[_Visit]) -> str:
    if not visits:
        return '<p class="muted">The subject was not found in any camera.</p>'
    rows = []
    for k, v in enumerate(visits, start=1):
        dur = (v.leave - v.enter).total_seconds() if v.enter and v.leave else None
        conf = v.raw.get("confidence")
        rows.append(
            f'<tr><td>{k}</td><td>{_e(v.camera)}</td><td title="{_e(v.raw.get("enter"))}">'
            f'{_clock(v.enter)}</td><td title="{_e(v.raw.get("leave"))}">{_clock(v.leave)}</td>'
            f"<td>{_seconds(dur)}</td><td>{'?' if conf is None else f'{float(conf):.2f}'}</td>"
            f"<td>{_e(', '.join(str(t) for t in v.raw.get('track_ids') or []))}</td>"
            f"<td>{_e(v.raw.get('video_id'))}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "camera", "enter", "leave", "duration", "confidence", "tracks", "video")
    )
    return f'<table class="rows card"><tr>{head}</tr>{"".join(rows)}</table>'


def _contact_card(c: _Contact, source: ReportSource, units: str, longest: float) -> str:
    raw = c.raw
    sid = raw.get("thumbnail_sighting_id")
    data = source.thumbnail(int(sid)) if sid is not None else None
    if data is None and raw.get("track_ids"):
        data = source.track_thumbnail([int(t) for t in raw["track_ids"]])
    uri = _jpeg_uri(data)
    thumb = (
        f'<img class="thumb" src="{uri}" alt="{_e(c.label)}">'
        if uri
        else _missing("no thumbnail", 110, 150)
    )
    order = int(raw.get("order") or 1)
    via = raw.get("via_person_id")
    if order == 1:
        order_text = "direct contact"
    elif via is None:  # came through a contact that is a track with no cross-camera person
        order_text = f"order {order}, via a contact with no person id"
    else:
        order_text = f"order {order}, via person {via}"
    per_cam = _per_camera(c)
    per_text = ", ".join(f"{cam} {_seconds(s)}" for cam, s in per_cam.items()) or "?"
    total = raw.get("exposure_s")
    overlap = (
        " (overlapping cameras counted once)"
        if total is not None and sum(per_cam.values()) > float(total) + 0.05
        else ""
    )
    rows = [
        ("exposure", f"{_seconds(total)}{overlap}"),
        ("per camera", per_text),
        ("closest", _distance(raw.get("closest"), str(raw.get("units") or units))),
        ("first, last", f"{_clock(c.first)} to {_clock(c.last)} UTC"),
        ("tracks", ", ".join(str(t) for t in raw.get("track_ids") or []) or "?"),
    ]
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    share = 100.0 * float(total or 0.0) / longest if longest > 0 else 0.0
    evidence = "".join(c.pictures[k] for k in sorted(c.pictures))
    if not evidence:
        evidence = '<p class="muted">no evidence frames in the trace</p>'
    elif order >= 2:  # the frames show this contact beside whom it came through, not the subject
        evidence = (
            f'<p class="legend" style="flex-basis:100%;margin:0"><span class="sw" '
            f'style="background:{c.near_color}"></span>{_e(c.near_label)} (the contact it '
            f'came through) and <span class="sw" style="background:{c.color}"></span>'
            f"{_e(c.label)}; distances are between these two</p>{evidence}"
        )
    return (
        f'<article class="card contact" id="contact-{c.rank}">'
        f'<div class="rank" style="border-color:{c.color}">{c.rank}</div>{thumb}'
        f'<div><h3>{_e(c.label)} <span class="muted">· {_e(order_text)}</span></h3>'
        f'<div class="xbar" title="exposure"><span style="width:{share:.1f}%;'
        f'background:{c.color}"></span></div><table>{table}</table></div>'
        f'<div class="evidence">{evidence}</div></article>'
    )


def render_report(
    trace: Mapping[str, Any], source: ReportSource, *, generated: datetime | None = None
) -> str:
    """The trace as one self-contained HTML page (see the module docstring for what it shows).

    ``trace`` is the document of ``reidtrace trace --json``; ``source`` supplies thumbnails,
    frames and cameras; ``generated`` is the time printed in the header (default: now, UTC).
    """
    trace = _check(trace)
    units = str(trace["contact_definition"].get("units") or "m")
    visits = [
        _Visit(
            camera=str(v.get("camera")),
            enter=_time(v.get("enter"), f"trajectory {k} enter"),
            leave=_time(v.get("leave"), f"trajectory {k} leave"),
            raw=v,
        )
        for k, v in enumerate(trace["trajectory"])
    ]
    contacts = _contacts(trace)
    cams = source.cameras()
    cam_units = {
        c.name: "m" if c.homography is not None and c.ground_units == "m" else "box_heights"
        for c in cams
    }
    _fill_evidence(contacts, source, cam_units, units)
    cameras = _camera_order(visits, contacts)
    generated = generated or datetime.now(UTC)

    subj = trace["subject"]
    if subj.get("person_id") is None and not subj.get("track_ids"):
        title = "Trace: nobody found" + (" for the photo" if subj.get("kind") == "photo" else "")
    else:
        title = f"Trace of {_person_label(subj)}"
        if subj.get("kind") == "photo":
            title += ", found by photo"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">reidtrace trace report · model {_e(trace.get("model"))} · generated '
        f"{_e(generated.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC'))}</p>",
        _subject_section(trace, source, visits, contacts),
        "<h2>Timeline per camera</h2>",
    ]
    timeline = _timeline_svg(visits, contacts, cameras)
    if timeline:
        parts += [
            f'<div class="card">{timeline}<p class="legend"><span class="sw" style="background:'
            f'{SUBJECT_COLOR}"></span>the subject in the camera &nbsp; thin bars: each contact, '
            "from its first to its last evidence frame in that camera (colours as in the "
            "contact list; exposure counts only the moments within the distance; a contact of "
            "order 2 was near the contact it came through, not necessarily the subject)</p></div>"
        ]
    else:
        parts.append('<p class="muted">No times to draw.</p>')
    parts.append("<h2>Site plan</h2>")
    plan, plan_notes = _site_plan_svg(visits, contacts, cams)
    if plan:
        parts.append(
            f'<div class="card">{plan}<p class="legend"><span class="sw" style="background:'
            f'{SUBJECT_COLOR}"></span>ground path of the subject (hollow dot: enters, filled: '
            "leaves) &nbsp; dots: where each contact stood in its evidence frames &nbsp; "
            "squares: cameras, dashed: what each sees of the ground</p>"
        )
        parts += [f'<p class="legend">{_e(n)}</p>' for n in plan_notes]
        parts.append("</div>")
    else:
        parts += [f'<p class="muted">{_e(n)}</p>' for n in plan_notes]
    parts += ["<h2>Trajectory</h2>", _trajectory_table(visits)]
    if any(int(c.raw.get("order") or 1) >= 2 for c in contacts):
        parts.append(f"<h2>Contacts ({len(contacts)}): direct first, then by exposure</h2>")
    else:
        parts.append(f"<h2>Contacts, by exposure ({len(contacts)})</h2>")
    if contacts:
        parts.append(
            f'<p class="legend">Evidence frames: <span class="sw" style="background:'
            f'{SUBJECT_COLOR}"></span>subject, the contact in its colour, the line joins their '
            "feet and is labelled with the distance.</p>"
        )
        longest = max(float(c.raw.get("exposure_s") or 0.0) for c in contacts)
        parts += [_contact_card(c, source, units, longest) for c in contacts]
    else:
        rule = _definition(trace["contact_definition"])
        parts.append(f'<p class="muted">No contacts: nobody stayed {_e(rule)}.</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts)


def write_report(
    trace: Mapping[str, Any],
    source: ReportSource,
    path: str | os.PathLike[str],
    *,
    generated: datetime | None = None,
) -> Path:
    """Render and write the report to ``path`` atomically (a reader never sees half a page).

    The page is rendered first, so a failure leaves any earlier report in place; then written
    to a temporary file beside ``path``, flushed to disk and renamed over it.
    """
    out = Path(path)
    if out.is_dir():
        raise ReidTraceError(f"{out} is a folder", hint="give a file name, e.g. report.html")
    if not out.parent.is_dir():
        raise ReidTraceError(
            f"cannot write {out}: folder {out.parent} does not exist", hint="create it first"
        )
    page = render_report(trace, source, generated=generated)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
