"""Cross-camera persons: group the tracks of every camera into people (issue 22 item 2).

First, when ``split_similarity`` is set (off by default), tracks in which the tracker followed
one person and then another are cut in two (:mod:`indexer.query.switches`). Then what links
two tracks, in the order the code applies it:

1. **Hard constraints** (a pair that breaks one can never end up in the same person, even
   through others). Foot points of boxes cut by the frame's bottom edge are not used (their
   bottom is not the feet).
   * one camera, overlapping in time: two people (a tracker shows one person once), unless
     their foot points stay within half ``ground_match_m`` and they look alike (cosine >=
     ``link_similarity``): one person the tracker doubled, not two at one spot;
   * two cameras with ground planes, overlapping in time: the same person must stand at the
     same place, so a median foot-point distance above ``ground_conflict_m`` = two people;
   * two cameras overlapping in time where either has no ground plane: two people, unless the
     data showed that camera pair to overlap (confident appearance matches that overlap in time);
   * disjoint in time, both with ground planes: faster than ``max_speed_mps`` (plus
     ``ground_slack_m`` of foot-point error) between where one ends and the next starts (the
     median foot point of their last / first second) is impossible (the homographies of one site map
     into one ground frame, as ``reidtrace synth`` and a site survey give them);
   * disjoint in time across cameras: quicker than half the quickest transit learned for that
     camera pair (less ``transit_slack_s``) is impossible.
2. **Score** of a feasible pair: the cosine of the track embeddings, plus up to ``ground_bonus``
   when two overlapping cameras see them at the same place (median foot-point distance within
   ``ground_match_m``; the bonus falls linearly with the distance and is full after
   ``ground_full_s`` seconds together: group members walk half a metre apart), plus
   ``transit_bonus`` when the transit time falls inside the range learned for that camera pair.
3. **Learned transit times**: per camera pair, both directions pooled (the walk takes as long
   either way), the gaps between confident matches
   (mutual nearest neighbours across the pair with cosine >= ``confident_similarity``, feasible
   as above); used once ``min_transit_samples`` are seen.
4. **Grouping**: greedy average-link agglomeration. Candidate pairs at or above
   ``link_similarity`` are taken best first; two groups merge when every cross pair is feasible
   and their mean cross score reaches ``mean_similarity``. Hand-written rather than scipy's or
   scikit-learn's agglomerative clustering: neither takes cannot-link constraints, which are the
   point here.

**Incremental.** :func:`update_persons` keeps every existing link: stored persons enter the
grouping as locked groups that new tracks may join but that never merge with each other or
split. :func:`ensure_persons` runs it whenever a usable track has no person yet, so a query never
sees stale persons. A **re-cluster** (every link dropped and recomputed: :func:`rebuild_persons`)
happens on ``reidtrace persons --rebuild``, and on its own when the thresholds or the embedder
differ from those the stored persons were built with (recorded in ``person_state``).

**Bounded memory.** Pairwise scores are O(n^2): above ``block_tracks`` tracks,
:func:`associate_in_blocks` groups the new tracks in time order, half a block at a time, against
the labelled tracks nearest in time.

**Confidence** of a track in its person: the mean score to the person's other tracks, clipped to
0..1 (1 for a person of one track).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy.orm import Session

from indexer.query.switches import split_switches
from indexer.settings import PersonSettings
from indexer.store import repo
from indexer.store.models import Camera, Track
from reid.errors import ReidTraceError

__all__ = [
    "PersonUpdate",
    "TrackInfo",
    "associate",
    "associate_in_blocks",
    "ensure_persons",
    "rebuild_persons",
    "update_persons",
]

_IMPOSSIBLE = -np.inf

ENDPOINT_S = 1.0
"""Seconds of foot points whose median is a track's start or end position (speed check)."""

TRANSIT_FLOOR = 0.5
"""A transit quicker than this share of the quickest learned one (less ``transit_slack_s``) is
impossible: people walk at different speeds, so the floor sits well under the observed range."""


@dataclass
class TrackInfo:
    """What association needs of one track (built from the store, or by hand in tests)."""

    id: int
    camera: str
    start: float  # UTC epoch seconds
    end: float
    embedding: np.ndarray | None  # unit vector
    t: np.ndarray | None = None  # foot-point times (epoch s), ground cameras only
    xy: np.ndarray | None = None  # (n, 2) foot points in metres
    person: int | None = None  # existing person (locked), or None

    @property
    def grounded(self) -> bool:
        return self.t is not None and self.xy is not None and len(self.t) > 0


@dataclass
class PersonUpdate:
    """What an association run did."""

    tracks: int  # tracks considered
    assigned: int  # tracks that got (or changed) a person
    persons: int  # persons after the run
    new_persons: int
    rebuilt: bool
    split: int = 0  # tracks cut where the tracker switched people (indexer.query.switches)
    transit: dict[str, list[float]] = field(default_factory=dict)  # "camA>camB": [lo, hi] s

    def as_dict(self) -> dict:
        return {
            "tracks": self.tracks,
            "assigned": self.assigned,
            "persons": self.persons,
            "new_persons": self.new_persons,
            "rebuilt": self.rebuilt,
            "split": self.split,
            "transit_s": self.transit,
        }


@dataclass
class _Pairs:
    score: np.ndarray  # (n, n) float, -inf where impossible
    transit: dict[tuple[str, str], tuple[float, float]]


def _ground_distance(a: TrackInfo, b: TrackInfo, t0: float, t1: float) -> float | None:
    """Median foot-point distance of two tracks over their common time [t0, t1] (``a``'s
    samples, ``b`` interpolated); None when they share no sample time."""
    assert a.t is not None and a.xy is not None and b.t is not None and b.xy is not None
    keep = (a.t >= max(t0, b.t[0])) & (a.t <= min(t1, b.t[-1]))
    if not keep.any():
        return None
    ts = a.t[keep]
    bx = np.interp(ts, b.t, b.xy[:, 0])
    by = np.interp(ts, b.t, b.xy[:, 1])
    return float(np.median(np.hypot(a.xy[keep, 0] - bx, a.xy[keep, 1] - by)))


def _ground_bonus(d: float, together_s: float, cfg: PersonSettings) -> float:
    """The bonus of two tracks at one place: linear in closeness, full after ground_full_s."""
    closeness = 1.0 - d / cfg.ground_match_m
    return cfg.ground_bonus * closeness * min(1.0, together_s / cfg.ground_full_s)


def _endpoint(t: TrackInfo, *, first: bool) -> tuple[float, float]:
    """Where a track starts (or ends): the median foot point of its first (last) ENDPOINT_S
    seconds, steadier than one box at the moment a person steps in or out of view."""
    if not t.grounded:
        return (0.0, 0.0)
    assert t.t is not None and t.xy is not None
    keep = t.t <= t.t[0] + ENDPOINT_S if first else t.t >= t.t[-1] - ENDPOINT_S
    x, y = np.median(t.xy[keep], axis=0)
    return float(x), float(y)


def _pair_scores(tracks: list[TrackInfo], cfg: PersonSettings) -> _Pairs:
    """The score of every pair (``-inf`` = impossible), with the transit ranges learned.

    Vectorised over pairs except the overlapping cross-camera ones (few), whose ground
    distance needs the two foot-point series."""
    n = len(tracks)
    dim = max((len(t.embedding) for t in tracks if t.embedding is not None), default=1)
    emb = np.zeros((n, dim), np.float32)
    has = np.array([t.embedding is not None for t in tracks], bool)
    for i, t in enumerate(tracks):
        if t.embedding is not None:
            emb[i] = t.embedding
    sim = (emb @ emb.T).astype(np.float64)
    sim[~has, :] = -1.0  # no appearance: only ground evidence can link it
    sim[:, ~has] = -1.0
    start = np.array([t.start for t in tracks])
    end = np.array([t.end for t in tracks])
    cam_names = sorted({t.camera for t in tracks})
    cam = np.array([cam_names.index(t.camera) for t in tracks])
    grounded = np.array([t.grounded for t in tracks], bool)
    tol = cfg.overlap_tolerance_s
    overlap = np.minimum(end[:, None], end[None, :]) - np.maximum(start[:, None], start[None, :])
    ov = overlap > tol
    same_cam = cam[:, None] == cam[None, :]
    bad = ov & same_cam
    bonus = np.zeros((n, n))
    # one camera, at once: two people, unless they stand at one spot and look alike (the
    # tracker doubled one; two people of a group, one behind the other, do not look alike)
    for i, j in zip(*np.nonzero(np.triu(bad, k=1)), strict=True):
        a, b = tracks[i], tracks[j]
        if a.grounded and b.grounded:
            d = _ground_distance(a, b, max(a.start, b.start), min(a.end, b.end))
            if d is not None and d <= cfg.ground_match_m / 2 and sim[i, j] >= cfg.link_similarity:
                bad[i, j] = bad[j, i] = False
                bonus[i, j] = bonus[j, i] = _ground_bonus(d, overlap[i, j], cfg)
    # disjoint with ground planes: walking speed from the earlier one's end to the later's start
    if cfg.max_speed_mps > 0 and grounded.any():
        first = np.array([_endpoint(t, first=True) for t in tracks])
        last = np.array([_endpoint(t, first=False) for t in tracks])
        gap = np.maximum(start[None, :] - end[:, None], 0.0)  # [i, j]: i before j
        dist = np.hypot(first[None, :, 0] - last[:, None, 0], first[None, :, 1] - last[:, None, 1])
        reach = cfg.max_speed_mps * gap + cfg.ground_slack_m
        fast = (dist > reach) & (start[:, None] <= start[None, :])
        fast = fast | fast.T
        bad |= fast & ~ov & grounded[:, None] & grounded[None, :]
    # overlapping in two cameras: same place (bonus) or two people
    pending: list[tuple[int, int]] = []  # overlapping without ground planes: decided below
    for i, j in zip(*np.nonzero(np.triu(ov & ~same_cam, k=1)), strict=True):
        a, b = tracks[i], tracks[j]
        if not (a.grounded and b.grounded):
            pending.append((int(i), int(j)))
            continue
        d = _ground_distance(a, b, max(a.start, b.start), min(a.end, b.end))
        if d is None:
            continue
        if d > cfg.ground_conflict_m:
            bad[i, j] = bad[j, i] = True
        elif d <= cfg.ground_match_m and cfg.ground_match_m > 0:
            bonus[i, j] = bonus[j, i] = _ground_bonus(d, overlap[i, j], cfg)
    # camera pairs without ground planes overlap when confident matches overlap in time there
    seen_overlap = {(cam[i], cam[j]) for i, j in pending if sim[i, j] >= cfg.confident_similarity}
    for i, j in pending:
        if (cam[i], cam[j]) not in seen_overlap and (cam[j], cam[i]) not in seen_overlap:
            bad[i, j] = bad[j, i] = True
    score = np.where(bad, _IMPOSSIBLE, sim)
    np.fill_diagonal(score, _IMPOSSIBLE)
    transit = _learn_transit(tracks, sim, score, cfg)
    # learned transit times: quicker than any = impossible, inside the range = a small bonus
    gap_ij = start[None, :] - end[:, None]  # i before j
    for (ca, cb), (lo, hi) in transit.items():
        ia, ib = cam == cam_names.index(ca), cam == cam_names.index(cb)
        pair = ia[:, None] & ib[None, :] & (gap_ij > tol) & np.isfinite(score)
        quick = pair & (gap_ij < TRANSIT_FLOOR * lo - cfg.transit_slack_s)
        inside = pair & ~quick & (gap_ij <= hi + cfg.transit_slack_s)
        quick, inside = quick | quick.T, inside | inside.T
        score[quick] = _IMPOSSIBLE
        score[inside] += cfg.transit_bonus
    finite = np.isfinite(score)
    score[finite] += bonus[finite]
    return _Pairs(score=score, transit=transit)


def _learn_transit(
    tracks: list[TrackInfo], sim: np.ndarray, score: np.ndarray, cfg: PersonSettings
) -> dict[tuple[str, str], tuple[float, float]]:
    """Per ordered camera pair, the 5th-95th percentile of the gaps between confident matches
    (outliers dropped): mutual nearest neighbours across the two cameras, cosine >=
    ``confident_similarity``, feasible and disjoint in time."""
    cams = sorted({t.camera for t in tracks})
    idx = {c: np.array([i for i, t in enumerate(tracks) if t.camera == c]) for c in cams}
    gaps: dict[tuple[str, str], list[float]] = defaultdict(list)
    for ai, ca in enumerate(cams):
        for cb in cams[ai + 1 :]:
            ia, ib = idx[ca], idx[cb]
            s = np.where(np.isfinite(score[np.ix_(ia, ib)]), sim[np.ix_(ia, ib)], -np.inf)
            if s.size == 0:
                continue
            best_b = s.argmax(axis=1)
            best_a = s.argmax(axis=0)
            for r, c in enumerate(best_b):
                if best_a[c] != r or s[r, c] < cfg.confident_similarity:
                    continue
                a, b = tracks[ia[r]], tracks[ib[c]]
                first, second = (a, b) if a.start <= b.start else (b, a)
                gap = second.start - first.end
                if gap > cfg.overlap_tolerance_s:
                    gaps[(first.camera, second.camera)].append(gap)
    out = {}
    # the walk between two cameras takes as long either way: both directions pool their gaps
    pooled = {k: gaps.get(k, []) + gaps.get((k[1], k[0]), []) for k in list(gaps)}
    pooled.update({(b, a): v for (a, b), v in pooled.items()})
    for k, v in pooled.items():
        g = np.asarray(v)
        # a confident match can still be wrong: drop gaps far from the rest (median +- 3 robust
        # spreads, at least 20% of the median) before taking the 5th-95th percentile range
        med = float(np.median(g))
        spread = max(1.4826 * float(np.median(np.abs(g - med))), 0.2 * med)
        g = g[np.abs(g - med) <= 3 * spread]
        if len(g) >= cfg.min_transit_samples:
            out[k] = (float(np.percentile(g, 5)), float(np.percentile(g, 95)))
    return out


def associate(
    tracks: list[TrackInfo], cfg: PersonSettings
) -> tuple[list[int], np.ndarray, dict[tuple[str, str], tuple[float, float]]]:
    """Group ``tracks``: a group label per track (groups of locked tracks, those with
    ``person`` set, keep the person id as their label; new groups get negative labels), the
    per-track confidence, and the learned transit ranges.

    Pure: no store. Locked groups never merge with each other and never split.
    """
    n = len(tracks)
    if n == 0:
        return [], np.zeros(0), {}
    pairs = _pair_scores(tracks, cfg)
    score = pairs.score
    feasible = np.isfinite(score)
    np.fill_diagonal(feasible, True)
    # groups: locked persons first, each new track alone
    members: dict[int, list[int]] = {}
    root = np.arange(n)
    by_person: dict[int, int] = {}
    for i, t in enumerate(tracks):
        if t.person is not None and t.person in by_person:
            root[i] = by_person[t.person]
            members[root[i]].append(i)
        else:
            members[i] = [i]
            if t.person is not None:
                by_person[t.person] = i
    locked = {r for r in members if tracks[r].person is not None}
    iu, ju = np.nonzero(np.triu(feasible & (score >= cfg.link_similarity), k=1))
    order = np.argsort(-score[iu, ju], kind="stable")
    for k in order:
        a, b = root[iu[k]], root[ju[k]]
        if a == b or (a in locked and b in locked):
            continue
        ma, mb = members[a], members[b]
        block = np.ix_(ma, mb)
        if not feasible[block].all() or score[block].mean() < cfg.mean_similarity:
            continue
        keep, gone = (a, b) if (a in locked or (b not in locked and a < b)) else (b, a)
        members[keep].extend(members.pop(gone))
        root[members[keep]] = keep
    conf = np.ones(n)
    labels = [0] * n
    for r, m in members.items():
        label = tracks[r].person if r in locked else -(r + 1)
        for i in m:
            labels[i] = int(label)  # type: ignore[arg-type]
        if len(m) > 1:
            s = score[np.ix_(m, m)].copy()
            np.fill_diagonal(s, np.nan)
            conf[m] = np.clip(np.nanmean(s, axis=1), 0.0, 1.0)
    return labels, conf, pairs.transit


def associate_in_blocks(
    tracks: list[TrackInfo], cfg: PersonSettings
) -> tuple[list[int], np.ndarray, dict[tuple[str, str], tuple[float, float]]]:
    """:func:`associate`, in bounded memory: at most ``cfg.block_tracks`` tracks at once.

    The pairwise scores take O(n^2) memory, which a long archive or a Market gallery of 20k
    crops cannot afford. Above the bound, the new tracks are grouped in time order, half a block
    at a time, against the already labelled tracks nearest to them in time (locked, as in an
    incremental update), so a person seen again only much later, beyond the block's time
    reach, starts a new person. Same labels and confidences as :func:`associate` otherwise.
    """
    n = len(tracks)
    block = cfg.block_tracks
    if n <= block:
        return associate(tracks, cfg)
    labels: list[int | None] = [t.person for t in tracks]
    conf = np.ones(n)
    transit: dict[tuple[str, str], tuple[float, float]] = {}
    new = sorted((i for i in range(n) if labels[i] is None), key=lambda i: tracks[i].start)
    fresh = -1  # labels of new persons: -1, -2, ... across blocks
    step = max(block // 2, 1)
    for k in range(0, len(new), step):
        chunk = new[k : k + step]
        t0 = min(tracks[i].start for i in chunk)
        t1 = max(tracks[i].end for i in chunk)
        done = [i for i in range(n) if labels[i] is not None]
        done.sort(key=lambda i: max(0.0, t0 - tracks[i].end, tracks[i].start - t1))
        context = done[: block - len(chunk)]
        # locked labels as positive stand-ins, so they cannot collide with associate's new ones
        stand_in = {lab: j + 1 for j, lab in enumerate(sorted({labels[i] for i in context}))}  # type: ignore[type-var]
        back = {v: lab for lab, v in stand_in.items()}
        sub = [replace(tracks[i], person=stand_in[labels[i]]) for i in context]
        sub += [replace(tracks[i], person=None) for i in chunk]
        got, c, learned = associate(sub, cfg)
        named: dict[int, int] = {}
        for i, lab, ci in zip(context + chunk, got, c, strict=True):
            if lab > 0:
                labels[i] = back[lab]
            else:
                if lab not in named:
                    named[lab] = fresh
                    fresh -= 1
                labels[i] = named[lab]
            conf[i] = ci
        transit.update(learned)
    return [int(lab) for lab in labels], conf, transit  # type: ignore[arg-type]


def _load(session: Session, *, keep_links: bool) -> list[TrackInfo]:
    rows: list[tuple[Track, Camera]] = repo.track_rows(session=session)
    grounded = [t.id for t, c in rows if c.homography is not None]
    feet = repo.foot_points(session=session, track_ids=grounded, visible_only=True)
    out = []
    for t, c in rows:
        ts, xy = feet.get(t.id, (None, None))
        out.append(
            TrackInfo(
                id=t.id,
                camera=c.name,
                start=t.start_time.timestamp(),
                end=t.end_time.timestamp(),
                embedding=repo.track_embedding(t),
                t=ts,
                xy=xy,
                person=t.person_id if keep_links else None,
            )
        )
    return out


def _settings_record(cfg: PersonSettings) -> dict:
    return cfg.model_dump(mode="json")


def _model(session: Session) -> str:
    return ",".join(repo.embedder_names(session=session))


def update_persons(session: Session, cfg: PersonSettings, *, rebuild: bool = False) -> PersonUpdate:
    """Assign every usable track to a person, keeping existing links (``rebuild``: drop them
    all first). One transaction."""
    if rebuild:
        repo.clear_persons(session=session, commit=False)
    # tracks that switched people are cut first (their new parts have no person yet)
    fresh = [t.id for t, _ in repo.track_rows(session=session) if rebuild or t.person_id is None]
    cuts = split_switches(session, cfg, fresh)
    tracks = _load(session, keep_links=not rebuild)
    labels, conf, transit = associate_in_blocks(tracks, cfg)
    new_labels = sorted({lab for lab in labels if lab < 0})
    ids = repo.create_persons(session=session, n=len(new_labels))
    to_person = dict(zip(new_labels, ids, strict=True))
    links = {}
    assigned = 0
    for t, lab, c in zip(tracks, labels, conf, strict=True):
        pid = to_person.get(lab, lab)
        links[t.id] = (pid, float(c))
        assigned += t.person != pid
    repo.set_person_links(session=session, links=links, commit=False)
    repo.delete_empty_persons(session=session, commit=False)
    repo.set_person_state(
        session=session, model=_model(session), settings=_settings_record(cfg), rebuilt=rebuild
    )  # commits
    return PersonUpdate(
        tracks=len(tracks),
        assigned=assigned,
        persons=len(set(pid for pid, _ in links.values())),
        new_persons=len(ids),
        rebuilt=rebuild,
        split=len(cuts),
        transit={f"{a}>{b}": [round(lo, 1), round(hi, 1)] for (a, b), (lo, hi) in transit.items()},
    )


def rebuild_persons(session: Session, cfg: PersonSettings) -> PersonUpdate:
    """Drop every person and group all tracks again (a re-cluster)."""
    return update_persons(session, cfg, rebuild=True)


def ensure_persons(session: Session, cfg: PersonSettings) -> PersonUpdate | None:
    """Make the persons current before a query: rebuild when the thresholds or the embedder
    changed since they were built, update when usable tracks have no person; None when nothing
    was stale. Raises when the store holds no tracks."""
    if not repo.stale_track_count(session=session, total=True):
        raise ReidTraceError(
            "the store holds no tracks", hint="ingest footage first: `reidtrace ingest PATH`"
        )
    state = repo.get_person_state(session=session)
    if state is not None and (
        state.settings != _settings_record(cfg) or state.model != _model(session)
    ):
        return rebuild_persons(session, cfg)
    if state is None or repo.stale_track_count(session=session):
        return update_persons(session, cfg)
    return None
