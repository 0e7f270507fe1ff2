"""Camera zones: where in the image people are looked for, and scored.

A camera may name *include* polygons (only there) and *exclude* polygons (never there), in image
pixels of its footage. A box belongs to the zones when its foot point (bottom centre, where the
person stands) lies inside at least one include polygon (or there are none) and inside no
exclude polygon; a point on a polygon's edge counts as inside. The foot point, not the box,
decides because a person standing at a zone's edge has most of the box outside it, and because
the far background of a scene (people beyond a road that the truth does not annotate, a shop
window with mannequins) is a region of the ground.

Ingestion drops boxes outside the zones before tracking, and ``evaluate-tracking`` drops truth
and tracked boxes outside the same zones, so what is never looked for is never scored.

Zones are written as text, one polygon each, ``"include:x,y x,y x,y ..."`` or
``"exclude:x,y ..."`` (the CLI's ``--zone``, repeatable), or as JSON
``{"include": [[[x, y], ...], ...], "exclude": [...]}`` (a camera's ``zones`` in
``cameras.json``, or a ``.json`` file given to ``--zone``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from reid.detections import Detections
from reid.errors import ReidTraceError

__all__ = ["Zones", "foot_points", "parse_zones"]

Polygon = tuple[tuple[float, float], ...]

_SYNTAX = (
    'write a zone as "include:x,y x,y x,y ..." or "exclude:x,y x,y x,y ..." (image pixels, '
    'at least 3 corners), or give a .json file with {"include": [[[x, y], ...]], '
    '"exclude": [...]}'
)


def foot_points(xyxy: np.ndarray) -> np.ndarray:
    """The bottom centre of each xyxy box, ``(n, 2)``: where a standing person touches the
    ground, and so the point a zone test uses."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, b[:, 3]], axis=1)


@dataclass(frozen=True)
class Zones:
    """Include and exclude polygons of one camera; empty zones keep everything."""

    include: tuple[Polygon, ...] = ()
    exclude: tuple[Polygon, ...] = ()

    def __post_init__(self) -> None:
        for kind, polys in (("include", self.include), ("exclude", self.exclude)):
            for poly in polys:
                pts = np.asarray(poly, dtype=np.float64)
                if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
                    raise ReidTraceError(
                        f"an {kind} zone needs at least 3 x,y corners, got {list(poly)!r}",
                        hint=_SYNTAX,
                    )
                if not np.isfinite(pts).all():
                    raise ReidTraceError(
                        f"an {kind} zone has a corner that is not a number: {list(poly)!r}",
                        hint=_SYNTAX,
                    )

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``(n, 2)`` image points that lie in the zones."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        keep = _inside_any(self.include, pts) if self.include else np.ones(len(pts), bool)
        if self.exclude:
            keep &= ~_inside_any(self.exclude, pts)
        return keep

    def keep(self, dets: Detections) -> Detections:
        """The boxes of ``dets`` whose foot point lies in the zones (all of them without zones)."""
        if not self or len(dets) == 0:
            return dets
        return dets[self.contains(foot_points(dets.xyxy))]

    def as_json(self) -> dict[str, list]:
        """The ``cameras.json`` form: ``{"include": [[[x, y], ...]], "exclude": [...]}``."""
        return {
            "include": [[list(p) for p in poly] for poly in self.include],
            "exclude": [[list(p) for p in poly] for poly in self.exclude],
        }

    @classmethod
    def from_json(cls, data: Any, *, where: str = "zones") -> Zones:
        """Zones from their JSON form (``None`` or ``{}`` = no zones); ``where`` names the
        source in the error message."""
        if data is None:
            return cls()
        if not isinstance(data, dict) or set(data) - {"include", "exclude"}:
            raise ReidTraceError(
                f"{where} must be an object with 'include' and/or 'exclude' lists, got {data!r}",
                hint=_SYNTAX,
            )
        try:
            return cls(
                include=tuple(_polygon(p) for p in data.get("include") or ()),
                exclude=tuple(_polygon(p) for p in data.get("exclude") or ()),
            )
        except (TypeError, ValueError) as err:
            raise ReidTraceError(f"{where} holds a bad polygon: {err}", hint=_SYNTAX) from err

    def scaled(self, factor: float) -> Zones:
        """The same zones in an image ``factor`` times as large (truth drawn at another size)."""
        return Zones(
            include=tuple(_scale(p, factor) for p in self.include),
            exclude=tuple(_scale(p, factor) for p in self.exclude),
        )


def parse_zones(specs: Iterable[str]) -> Zones:
    """Zones from the CLI's ``--zone`` values: each ``include:x,y x,y ...``,
    ``exclude:x,y ...``, or the path of a ``.json`` file holding zones; all are combined."""
    include: list[Polygon] = []
    exclude: list[Polygon] = []
    for spec in specs:
        text = spec.strip()
        if text.lower().endswith(".json"):
            z = _zones_file(Path(text).expanduser())
            include += z.include
            exclude += z.exclude
            continue
        kind, sep, corners = text.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in ("include", "exclude"):
            raise ReidTraceError(
                f"bad zone {spec!r}: it must start with include: or exclude:", hint=_SYNTAX
            )
        try:
            poly = tuple(_pair(c) for c in corners.split())
        except ValueError as err:
            raise ReidTraceError(f"bad zone {spec!r}: {err}", hint=_SYNTAX) from err
        (include if kind == "include" else exclude).append(poly)
    return Zones(include=tuple(include), exclude=tuple(exclude))


def _zones_file(path: Path) -> Zones:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ReidTraceError(
            f"cannot read the zone file {path}: {err.strerror}",
            hint="check the path, or write the zone inline: include:x,y x,y x,y ...",
        ) from err
    except json.JSONDecodeError as err:
        raise ReidTraceError(f"{path} is not valid JSON: {err}", hint=_SYNTAX) from err
    return Zones.from_json(data, where=str(path))


def _pair(corner: str) -> tuple[float, float]:
    parts = corner.split(",")
    if len(parts) != 2:
        raise ValueError(f"corner {corner!r} is not x,y")
    x, y = (float(v) for v in parts)
    return (x, y)


def _polygon(corners: Sequence[Sequence[float]]) -> Polygon:
    return tuple((float(x), float(y)) for x, y in corners)


def _scale(poly: Polygon, factor: float) -> Polygon:
    return tuple((x * factor, y * factor) for x, y in poly)


def _inside_any(polys: tuple[Polygon, ...], pts: np.ndarray) -> np.ndarray:
    """Points inside (or on the edge of) at least one polygon, with OpenCV's exact test."""
    out = np.zeros(len(pts), bool)
    for poly in polys:
        contour = np.asarray(poly, dtype=np.float32).reshape(-1, 1, 2)
        for i in np.flatnonzero(~out):
            p = (float(pts[i, 0]), float(pts[i, 1]))
            out[i] = cv2.pointPolygonTest(contour, p, False) >= 0
    return out
