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

``reid.track.DeepSortTracker`` uses these pieces when it is given a homography: every track
carries a ground state next to its image state, and its cascade adds ``ground_terms`` to the
appearance cost (see ``reid.track.deepsort``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reid.geometry import apply_homography
from reid.track import kalman

GroundState = tuple[np.ndarray, np.ndarray]
"""(mean, covariance) of a ground position: a track's (4,) / (4, 4) state, or a box's foot
point (2,) / (2, 2) measurement."""


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


def ground_terms(
    motion: GroundMotion,
    gate: float,
    tracks: Sequence[GroundState | None],
    boxes: Sequence[GroundState | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (track, box): whether both have a ground position, the Mahalanobis distance over
    ``gate`` and the plain distance in metres (0 where unknown)."""
    known = np.zeros((len(tracks), len(boxes)), bool)
    maha = np.zeros(known.shape)
    metres = np.zeros(known.shape)
    have = [j for j, g in enumerate(boxes) if g is not None]
    if not have:
        return known, maha, metres
    z = np.array([boxes[j][0] for j in have])
    r = np.array([boxes[j][1] for j in have])
    for row, g in enumerate(tracks):
        if g is not None:
            known[row, have] = True
            maha[row, have] = motion.distance(g[0], g[1], z, r) / gate
            metres[row, have] = np.linalg.norm(z - g[0][None, :2], axis=1)
    return known, maha, metres


def shape_gate(states: Sequence[tuple[np.ndarray, np.ndarray]], xyah: np.ndarray) -> np.ndarray:
    """(tracks, boxes): the box's aspect ratio and height fit the track's image filter
    (the image gate without the position dimensions)."""
    z = xyah[:, 2:]
    out = np.zeros((len(states), len(xyah)), bool)
    for row, (mean, cov) in enumerate(states):
        p_mean, p_cov = kalman.project(mean, cov)
        d = z - p_mean[None, 2:]
        out[row] = np.einsum("ni,ij,nj->n", d, np.linalg.inv(p_cov[2:, 2:]), d) <= kalman.CHI2_95[2]
    return out
