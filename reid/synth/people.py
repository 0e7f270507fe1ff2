"""Who walks where and when: routes on the site graph, groups, lingering and passers-by.

Each identity gets a plan made of segments (walk from A to B, or stand at P facing a direction)
in world seconds. Groups of 2-4 share one plan and keep a formation, and stand together in a zone
for a while: those are the contacts. Passers-by cross quickly without stopping: they come close to
others only briefly and must not become contacts. ``Person.states(times)`` evaluates a plan at
many instants at once, which is what the per-camera renderer needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from reid.synth.appearance import Appearance
from reid.synth.site import ENTRANCES, NODES, ZONES, shortest_path

ROLES = ("walker", "group", "passer")
WARM_UP_S = 90.0  # plans may start this long before the cameras do: the site is never empty


@dataclass
class Segment:
    """A straight walk from ``p0`` to ``p1``, or a stand at ``p0`` facing ``face``."""

    t0: float
    t1: float
    p0: tuple[float, float]
    p1: tuple[float, float]
    face: float = 0.0  # heading in degrees while standing
    d0: float = 0.0  # distance walked before this segment (drives the walk cycle)

    @property
    def moving(self) -> bool:
        return self.p0 != self.p1


@dataclass
class Person:
    pid: int  # appearance index + 1: the MOT id and the Market id
    appearance: Appearance
    role: str
    group: int = -1  # group number, -1 for people alone
    speed: float = 1.3
    segments: list[Segment] = field(default_factory=list)

    @property
    def t_enter(self) -> float:
        return self.segments[0].t0

    @property
    def t_leave(self) -> float:
        return self.segments[-1].t1

    def states(self, times: np.ndarray) -> dict[str, np.ndarray]:
        """Vectorised state at ``times``: x, y, heading (deg), moving, walked distance, alive."""
        t = np.asarray(times, np.float64)
        n = len(t)
        out = {
            "x": np.full(n, np.nan),
            "y": np.full(n, np.nan),
            "heading": np.zeros(n),
            "moving": np.zeros(n, bool),
            "walked": np.zeros(n),
        }
        for s in self.segments:
            m = (t >= s.t0) & (t < s.t1)
            if not m.any():
                continue
            f = (t[m] - s.t0) / max(s.t1 - s.t0, 1e-9)
            out["x"][m] = s.p0[0] + f * (s.p1[0] - s.p0[0])
            out["y"][m] = s.p0[1] + f * (s.p1[1] - s.p0[1])
            if s.moving:
                out["heading"][m] = math.degrees(math.atan2(s.p1[1] - s.p0[1], s.p1[0] - s.p0[0]))
                out["moving"][m] = True
                out["walked"][m] = s.d0 + f * math.dist(s.p0, s.p1)
            else:
                out["heading"][m] = s.face
                out["walked"][m] = s.d0
        out["alive"] = ~np.isnan(out["x"])
        return out


def _jitter(p: tuple[float, float], rng: np.random.Generator, r: float) -> tuple[float, float]:
    return (p[0] + float(rng.uniform(-r, r)), p[1] + float(rng.uniform(-r, r)))


def _route(rng: np.random.Generator, passer: bool) -> tuple[list[str], list[str]]:
    """Node sequence from an entrance via zero to two zones to an exit, and the zones visited."""
    start = str(rng.choice(ENTRANCES))
    zones = list(ZONES)
    if passer:
        stops: list[str] = []
        end = str(rng.choice([e for e in ENTRANCES if e != start]))
    else:
        k = int(rng.choice([1, 1, 2]))
        stops = [str(z) for z in rng.choice(zones, size=k, replace=False)]
        end = str(rng.choice(ENTRANCES))
    nodes = [start]
    for target in [*stops, end]:
        leg = shortest_path(nodes[-1], target)
        nodes.extend(leg[1:])
    if len(nodes) == 1:  # start == end with no stop: walk to a zone and back
        nodes += shortest_path(start, "plaza")[1:] + shortest_path("plaza", end)[1:]
    return nodes, stops


def _plan(
    rng: np.random.Generator,
    t_start: float,
    speed: float,
    passer: bool,
    dwell_range: tuple[float, float],
    lane: float,
) -> tuple[list[Segment], list[tuple[float, float]]]:
    """Centre-line segments of one walker or group; returns the segments and the dwell points."""
    nodes, stops = _route(rng, passer)
    pts = [_jitter(NODES[n], rng, lane) for n in nodes]
    segs: list[Segment] = []
    t, walked = t_start, 0.0
    dwell_points = []
    pending = list(stops)
    for i in range(len(pts) - 1):
        p0, p1 = pts[i], pts[i + 1]
        dur = math.dist(p0, p1) / speed
        segs.append(Segment(t, t + dur, p0, p1, d0=walked))
        t += dur
        walked += math.dist(p0, p1)
        if pending and nodes[i + 1] == pending[0]:
            pending.pop(0)
            centre, radius = ZONES[nodes[i + 1]]
            a, r = rng.uniform(0, 2 * math.pi), radius * math.sqrt(rng.uniform(0, 1))
            spot = (centre[0] + r * math.cos(a), centre[1] + r * math.sin(a))
            dwell = float(rng.uniform(*dwell_range))
            d_in = math.dist(p1, spot)
            segs.append(Segment(t, t + d_in / speed, p1, spot, d0=walked))
            t += d_in / speed
            walked += d_in
            face = float(rng.uniform(0, 360))
            segs.append(Segment(t, t + dwell, spot, spot, face=face, d0=walked))
            t += dwell
            dwell_points.append(spot)
            segs.append(Segment(t, t + d_in / speed, spot, p1, d0=walked))
            t += d_in / speed
            walked += d_in
            pts[i + 1] = p1
    return segs, dwell_points


def _offset(segs: list[Segment], dx: float, dy: float, face_centre: bool) -> list[Segment]:
    """A group member's copy of the leader's plan, displaced in the walking frame.

    The displacement turns with the path, but only between segments' ends: at a corner the
    member takes the mean of the two headings' offsets, and on the walk into (or out of) a
    stop they move from their place in the walking line to their place in the standing ring.
    Rotating each segment's offset on its own made every member jump up to ~1.5 m in one frame
    at each corner and stop, which no real group does and which trackers then had to survive.
    """
    forms = []
    for s in segs:
        h = math.atan2(s.p1[1] - s.p0[1], s.p1[0] - s.p0[0]) if s.moving else math.radians(s.face)
        c, si = math.cos(h), math.sin(h)
        forms.append((dx * c - dy * si, dx * si + dy * c))
    # offset at each segment boundary: standing places win, corners take the mean
    ends = [forms[0]]
    for k in range(1, len(segs)):
        if not segs[k].moving:
            ends.append(forms[k])
        elif not segs[k - 1].moving:
            ends.append(forms[k - 1])
        else:
            ends.append(((forms[k - 1][0] + forms[k][0]) / 2, (forms[k - 1][1] + forms[k][1]) / 2))
    ends.append(forms[-1])
    out = []
    for k, s in enumerate(segs):
        (ax, ay), (bx, by) = ends[k], ends[k + 1]
        p0 = (s.p0[0] + ax, s.p0[1] + ay)
        p1 = (s.p1[0] + bx, s.p1[1] + by)
        face = s.face
        if not s.moving:
            p1 = p0  # a stand stays a stand
            if face_centre:
                face = math.degrees(math.atan2(-ay, -ax))
        out.append(Segment(s.t0, s.t1, p0, p1, face=face, d0=s.d0))
    return out


def plan_people(
    appearances: list[Appearance],
    *,
    duration_s: float,
    num_groups: int,
    passer_frac: float,
    rng: np.random.Generator,
) -> list[Person]:
    """Give every identity a role and a plan inside [0, duration_s] (some are already walking)."""
    n = len(appearances)
    order = rng.permutation(n)
    people: list[Person] = []
    # group sizes 2-4, drawn until num_groups groups are formed from the shuffled identities
    sizes = [int(rng.integers(2, 5)) for _ in range(num_groups)]
    while sum(sizes) > n:  # shrink the largest groups to fit (validated upstream: 2 * groups <= n)
        sizes[int(np.argmax(sizes))] -= 1
    cursor = 0
    for g, size in enumerate(sizes):
        members = order[cursor : cursor + size]
        cursor += size
        speed = float(rng.uniform(0.95, 1.2))
        t0 = float(rng.uniform(-WARM_UP_S, 0.55 * duration_s))
        segs, _ = _plan(rng, t0, speed, False, (15.0, 45.0), 0.8)
        spacing = float(rng.uniform(0.55, 0.8))
        for j, idx in enumerate(members):
            # side by side while walking, a ring while standing (both within ~1.6 m)
            dy = (j - (size - 1) / 2) * spacing
            dx = float(rng.uniform(-0.25, 0.25))
            people.append(
                Person(
                    int(idx) + 1, appearances[idx], "group", g, speed, _offset(segs, dx, dy, True)
                )
            )
    for idx in order[cursor:]:
        passer = bool(rng.uniform() < passer_frac)
        speed = float(rng.uniform(1.35, 1.8) if passer else rng.uniform(1.05, 1.55))
        t0 = float(rng.uniform(-WARM_UP_S, 0.9 * duration_s))
        segs, _ = _plan(rng, t0, speed, passer, (3.0, 25.0), 1.4)
        role = "passer" if passer else "walker"
        people.append(Person(int(idx) + 1, appearances[idx], role, -1, speed, segs))
    people.sort(key=lambda p: p.pid)  # pid = appearance index + 1, so twins map to ids directly
    return people
