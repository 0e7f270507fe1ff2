"""Ground-plane motion for DeepSORT: each track's foot point followed in metres.

With perfect boxes the tracker's identity losses are swaps inside groups of people who walk
side by side, overlap in the image and part again (``docs/tracking.md``). In the image their
boxes are nearly the same, and DeepSORT's image Kalman filter gates them all in, leaving the
colour histogram alone to decide; on the ground they stay 0.5-1 m apart and keep their
left/right order, and a walker's next position is predictable to about 10 cm per frame. So
where the camera has an image->ground homography, every track also carries a constant-velocity
Kalman filter of its foot point on the ground, and association adds the Mahalanobis distance of
each box's foot point to the track's predicted ground position to the appearance cost, and
lets a box join a track across a jump that the image gate refuses (a group's formation turning
with it, see ``GroundDeepSort``).

A foot point is only measured where the box's bottom edge is the person's feet: a box cut by
the bottom of the frame gives no ground measurement (the track's ground state is predicted
through it). The pixel noise of a foot point is taken as a fraction of the box height (as in
DeepSORT's image filter) and carried to the ground through the homography's Jacobian, so a far
person, whose pixel spans more ground, is trusted less along the view ray.

The classes here plug into deep-sort-realtime 1.3.2 (``Tracker`` subclass with its own
``_match``, ``Track`` subclass via ``override_track_class``); ``reid.track.DeepSortTracker``
builds them when given a homography.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from deep_sort_realtime.deep_sort import iou_matching, kalman_filter, linear_assignment
from scipy.optimize import linear_sum_assignment

from reid.geometry import apply_homography
from reid.track.gallery import CleanGalleryTrack, CleanGalleryTracker

GATED = linear_assignment.INFTY_COST
CHI2_2D_95 = kalman_filter.chi2inv95[2]


class GroundMotion:
    """Image foot points to metres, and a constant-velocity Kalman filter on the ground.

    Time is in frames (``fps`` converts the walking-speed priors, which are in SI units).
    ``pixel_noise`` is the foot point's standard error as a fraction of the box height.
    """

    def __init__(
        self,
        homography: np.ndarray,
        *,
        fps: float,
        image_height: int | None,
        pixel_noise: float = 0.05,
        speed_std: float = 1.5,
        accel_std: float = 1.0,
    ) -> None:
        self.h = np.asarray(homography, np.float64)
        self.image_height = image_height
        self.pixel_noise = float(pixel_noise)
        self.v0 = speed_std / fps  # prior spread of a new track's velocity, m/frame
        a = accel_std / fps**2  # acceleration, m/frame^2
        self.f = np.eye(4)
        self.f[0, 2] = self.f[1, 3] = 1.0
        g = np.array([[0.5, 0], [0, 0.5], [1, 0], [0, 1]])
        self.q = a * a * (g @ g.T)

    def measure(self, xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground points (n, 2) and their 2x2 covariances (n, 2, 2); NaN rows: no measurement."""
        xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
        u = (xyxy[:, 0] + xyxy[:, 2]) / 2
        v = xyxy[:, 3]
        pts = apply_homography(self.h, np.stack([u, v], axis=1))
        if self.image_height is not None:
            pts[v >= self.image_height - 1] = np.nan  # cut by the frame: not the feet
        # Jacobian of the homography at each foot point, times the pixel noise
        p = np.stack([u, v, np.ones_like(u)], axis=1) @ self.h.T
        w = p[:, 2:3]
        jac = np.empty((len(u), 2, 2))
        for r in range(2):
            for c in range(2):
                jac[:, r, c] = (self.h[r, c] * w[:, 0] - p[:, r] * self.h[2, c]) / w[:, 0] ** 2
        sigma = np.maximum(self.pixel_noise * (xyxy[:, 3] - xyxy[:, 1]), 1.0)
        cov = jac @ jac.transpose(0, 2, 1) * (sigma**2)[:, None, None]
        bad = ~np.isfinite(pts).all(axis=1) | ~np.isfinite(cov).all(axis=(1, 2))
        pts[bad] = np.nan
        return pts, cov

    def initiate(self, z: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = np.r_[z, 0.0, 0.0]
        cov = np.zeros((4, 4))
        cov[:2, :2] = r
        cov[2, 2] = cov[3, 3] = self.v0**2
        return mean, cov

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.f @ mean, self.f @ cov @ self.f.T + self.q

    def update(
        self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray, r: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        s = cov[:2, :2] + r
        k = cov[:, :2] @ np.linalg.inv(s)
        mean = mean + k @ (z - mean[:2])
        cov = cov - k @ cov[:2, :]
        return mean, (cov + cov.T) / 2

    def distance(
        self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray, r: np.ndarray
    ) -> np.ndarray:
        """Squared Mahalanobis distances (m,) of ground points ``z`` (m, 2) to a track."""
        s = cov[None, :2, :2] + r
        d = z - mean[None, :2]
        return np.einsum("ni,nij,nj->n", d, np.linalg.inv(s), d)


class GroundTrack(CleanGalleryTrack):
    """A DeepSORT track that also follows its foot point on the ground (``ground`` is None
    until the first box whose feet are in the frame)."""

    motion: GroundMotion | None = None
    ground: tuple[np.ndarray, np.ndarray] | None = None

    def predict(self, kf: Any) -> None:
        super().predict(kf)
        if self.ground is not None and self.motion is not None:
            self.ground = self.motion.predict(*self.ground)

    def update(self, kf: Any, detection: Any) -> None:
        super().update(kf, detection)
        z = getattr(detection, "ground", None)
        if z is None or self.motion is None:
            return
        if self.ground is None:
            self.ground = self.motion.initiate(*z)
        else:
            self.ground = self.motion.update(*self.ground, *z)


class GroundDeepSort(CleanGalleryTracker):
    """deep-sort-realtime's tracker with the ground distance in every association step.

    ``_match`` follows the original (appearance cascade over confirmed tracks, then IoU for new
    and just-lost tracks) with two changes in the cascade. The cost is the appearance distance
    plus ``ground_weight`` times the ground Mahalanobis distance (capped at ``ground_gate``,
    scaled so the cap is 1), so within the gate the nearer box on the ground wins where the
    colours are alike. And a box may also join a track outside DeepSORT's image gate if its feet
    are within ``ground_radius`` metres of the track's predicted feet and its box shape (aspect,
    height) fits the track's: a walking group's formation turns with it, which moves its members
    up to ~1 m in one frame. The ground never narrows the image gate: a real detector's box of a
    partly hidden person has its bottom edge above the feet, and gating on it lost tracks
    (NanoDet, seed 7: MOTA 0.392 to 0.386). A pair is still accepted only if its appearance
    distance is within ``max_cosine_distance``.
    """

    def __init__(
        self,
        metric: Any,
        motion: GroundMotion,
        *,
        ground_weight: float,
        ground_gate: float,
        ground_radius: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(metric, override_track_class=GroundTrack, **kwargs)
        self.motion = motion
        self.ground_weight = ground_weight
        self.ground_gate = ground_gate
        self.ground_radius = ground_radius
        self.frame_ground: tuple[np.ndarray, np.ndarray] | None = None

    def set_frame(self, xyxy: np.ndarray) -> None:
        """The current frame's boxes (indexed by ``Detection.others``) before ``update``."""
        self.frame_ground = self.motion.measure(xyxy)

    def annotate(self, detection: Any) -> None:
        """Attach ``detection.ground`` = (point, covariance) or None from the frame's boxes."""
        detection.ground = None
        if self.frame_ground is None or detection.others is None:
            return
        pts, cov = self.frame_ground
        i = int(detection.others)
        if np.isfinite(pts[i]).all():
            detection.ground = (pts[i], cov[i])

    def ground_terms(
        self, tracks: list, dets: list, t_idx: list, d_idx: list
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (track, box): whether both have a ground position, the Mahalanobis distance
        over ``ground_gate`` and the plain distance in metres (0 where unknown)."""
        known = np.zeros((len(t_idx), len(d_idx)), bool)
        maha = np.zeros(known.shape)
        metres = np.zeros(known.shape)
        have = [j for j, d in enumerate(d_idx) if getattr(dets[d], "ground", None) is not None]
        if not have:
            return known, maha, metres
        z = np.array([dets[d_idx[j]].ground[0] for j in have])
        r = np.array([dets[d_idx[j]].ground[1] for j in have])
        for row, t in enumerate(t_idx):
            g = getattr(tracks[t], "ground", None)
            if g is not None:
                known[row, have] = True
                maha[row, have] = self.motion.distance(g[0], g[1], z, r) / self.ground_gate
                metres[row, have] = np.linalg.norm(z - g[0][None, :2], axis=1)
        return known, maha, metres

    def shape_gate(self, t_idx: list, dets: list, d_idx: list) -> np.ndarray:
        """(tracks, boxes): the box's aspect ratio and height fit the track's image filter
        (DeepSORT's gate without the position dimensions)."""
        z = np.asarray([dets[i].to_xyah()[2:] for i in d_idx])
        out = np.zeros((len(t_idx), len(d_idx)), bool)
        for row, k in enumerate(t_idx):
            mean, cov = self.kf.project(self.tracks[k].mean, self.tracks[k].covariance)
            d = z - mean[None, 2:]
            out[row] = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov[2:, 2:]), d) <= CHI2_2D_95
        return out

    def _initiate_track(self, detection: Any) -> None:
        super()._initiate_track(detection)
        track = self.tracks[-1]
        track.motion = self.motion
        z = getattr(detection, "ground", None)
        track.ground = None if z is None else self.motion.initiate(*z)

    def _match(self, detections: list) -> tuple[list, list, list]:
        for d in detections:
            self.annotate(d)
        confirmed = [i for i, t in enumerate(self.tracks) if t.is_confirmed()]
        unconfirmed = [i for i, t in enumerate(self.tracks) if not t.is_confirmed()]
        threshold = self.metric.matching_threshold

        matches_a: list[tuple[int, int]] = []
        unmatched_dets = list(range(len(detections)))
        for level in range(self.max_age):
            if not unmatched_dets:
                break
            t_idx = [k for k in confirmed if self.tracks[k].time_since_update == 1 + level]
            if not t_idx:
                continue
            feats = np.array([detections[i].feature for i in unmatched_dets])
            app = self.metric.distance(feats, [self.tracks[k].track_id for k in t_idx])
            known, maha, metres = self.ground_terms(self.tracks, detections, t_idx, unmatched_dets)
            image_gate = linear_assignment.gate_cost_matrix(
                self.kf, app.copy(), self.tracks, detections, t_idx, unmatched_dets,
                only_position=self.gating_only_position,
            ) < GATED  # fmt: skip
            # the ground widens the image gate, never narrows it: a box within ground_radius
            # of the track's predicted feet, with the track's box shape, may join it too
            wide = known & (metres <= self.ground_radius)
            if wide.any():
                wide &= self.shape_gate(t_idx, detections, unmatched_dets)
            ok = (app <= threshold) & (image_gate | wide)
            cost = np.where(ok, app + self.ground_weight * np.sqrt(np.minimum(maha, 1.0)), GATED)
            rows, cols = linear_sum_assignment(cost)
            taken = set()
            for r, c in zip(rows, cols, strict=True):
                if ok[r, c]:
                    matches_a.append((t_idx[r], unmatched_dets[c]))
                    taken.add(unmatched_dets[c])
            unmatched_dets = [d for d in unmatched_dets if d not in taken]
        matched_tracks = {k for k, _ in matches_a}
        unmatched_a = [k for k in confirmed if k not in matched_tracks]

        iou_candidates = unconfirmed + [
            k for k in unmatched_a if self.tracks[k].time_since_update == 1
        ]
        unmatched_a = [k for k in unmatched_a if self.tracks[k].time_since_update != 1]

        matches_b, unmatched_b, unmatched_dets = linear_assignment.min_cost_matching(
            iou_matching.iou_cost, self.max_iou_distance, self.tracks, detections, iou_candidates,
            unmatched_dets,
        )  # fmt: skip
        return matches_a + matches_b, list(set(unmatched_a + list(unmatched_b))), unmatched_dets
