"""Planar geometry shared by every stage: homographies between image pixels and the ground.

A camera with a known ground-plane homography lets foot points be measured in metres
(ARCHITECTURE.md, *Co-occurrence contact*). ``cameras.json`` stores ``H_image_to_ground``; the
inverse maps ground points back into the image. The pinhole model here is what the synthetic
world uses to place cameras; real cameras only ever supply the homography.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from reid.errors import ReidTraceError


def as_homography(value: object, *, name: str = "homography") -> np.ndarray:
    """A validated, invertible 3x3 float64 matrix, scaled so that H[2, 2] == 1 when possible."""
    try:
        h = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ReidTraceError(
            f"{name} is not a 3x3 matrix of numbers: {value!r}",
            hint="give it as [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]]",
        ) from err
    if h.shape != (3, 3) or not np.isfinite(h).all():
        raise ReidTraceError(
            f"{name} must be a finite 3x3 matrix, got shape {h.shape}",
            hint="give it as [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]]",
        )
    if abs(np.linalg.det(h)) < 1e-12:
        raise ReidTraceError(f"{name} is singular (determinant ~ 0)", hint="check the calibration")
    if abs(h[2, 2]) > 1e-12:
        h = h / h[2, 2]
    return h


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (n, 2) points through a 3x3 homography; points that land at infinity become NaN."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homog = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(h, np.float64).T
    w = homog[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = homog[:, :2] / w
    out[np.abs(w[:, 0]) < 1e-12] = np.nan
    return out


@dataclass(frozen=True)
class PinholeCamera:
    """A static camera above a flat ground (world: x east, y north, z up, metres).

    ``yaw_deg`` is the compass direction the camera looks along (0 = +x, 90 = +y) and
    ``pitch_deg`` how far it tilts down from the horizon. Square pixels, principal point at the
    image centre: enough to render a believable view and derive an exact ground homography.
    """

    width: int
    height: int
    focal_px: float
    position: tuple[float, float, float]
    yaw_deg: float
    pitch_deg: float

    @cached_property
    def K(self) -> np.ndarray:
        return np.array(
            [[self.focal_px, 0, self.width / 2], [0, self.focal_px, self.height / 2], [0, 0, 1]],
            dtype=np.float64,
        )

    @cached_property
    def R(self) -> np.ndarray:
        """World-to-camera rotation; camera axes are x right, y down, z forward."""
        yaw, pitch = math.radians(self.yaw_deg), math.radians(self.pitch_deg)
        fwd = np.array(
            [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)]
        )
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(fwd, right)
        return np.stack([right, down, fwd])

    @cached_property
    def ground_to_image(self) -> np.ndarray:
        """Homography from ground (x, y) metres to pixels: K [r1 r2 t] for points with z = 0."""
        t = -self.R @ np.asarray(self.position, np.float64)
        h = self.K @ np.column_stack([self.R[:, 0], self.R[:, 1], t])
        return h / h[2, 2]

    @cached_property
    def image_to_ground(self) -> np.ndarray:
        h = np.linalg.inv(self.ground_to_image)
        return h / h[2, 2]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) world points in camera coordinates (z = depth along the optical axis)."""
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        return (pts - np.asarray(self.position)) @ self.R.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) world points to (n, 2) pixels and (n,) depths (<= 0 means behind the camera)."""
        cam = self.to_camera(points)
        depth = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam[:, :2] / depth[:, None]) * self.focal_px + np.array(
                [self.width / 2, self.height / 2]
            )
        return uv, depth

    def bearing_deg(self, xy: np.ndarray) -> np.ndarray:
        """Compass direction from ground points towards the camera (for view angles)."""
        d = np.asarray(self.position[:2]) - np.asarray(xy, np.float64).reshape(-1, 2)
        return np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def camera_position(
    image_to_ground: np.ndarray, width: int, height: int
) -> tuple[float, float, float] | None:
    """Where a camera stands, ``(x, y, height)`` in ground units, from its homography alone.

    Real cameras only supply the image-to-ground homography, but a site plan wants their
    positions. Assuming the pinhole model of :class:`PinholeCamera` (square pixels, principal
    point at the image centre, no skew), the homography fixes the focal length (the first two
    columns of ``K^-1 H_ground_to_image`` are orthogonal and of equal length: Zhang's
    constraints, solved in least squares for ``1/f^2``) and then the pose. ``None`` when the
    homography does not fit that model (no positive focal length, camera not above the ground).
    """
    h_i2g = as_homography(image_to_ground, name="image_to_ground")
    g = np.linalg.inv(h_i2g)
    g = np.array([[1.0, 0, -width / 2], [0, 1.0, -height / 2], [0, 0, 1.0]]) @ g
    g1, g2 = g[:, 0], g[:, 1]
    # r1 . r2 = 0 and |r1| = |r2|, with (x, y) rows scaled by 1/f: a * (1/f^2) + b = 0 each.
    a = np.array(
        [g1[0] * g2[0] + g1[1] * g2[1], (g1[0] ** 2 + g1[1] ** 2) - (g2[0] ** 2 + g2[1] ** 2)]
    )
    b = np.array([g1[2] * g2[2], g1[2] ** 2 - g2[2] ** 2])
    denom = float(a @ a)
    if denom < 1e-18:
        return None
    inv_f2 = -float(a @ b) / denom
    if not np.isfinite(inv_f2) or inv_f2 <= 0:
        return None
    m = np.diag([math.sqrt(inv_f2), math.sqrt(inv_f2), 1.0]) @ g  # = s [r1 r2 t]
    scale = (np.linalg.norm(m[:, 0]) + np.linalg.norm(m[:, 1])) / 2
    for sign in (1.0, -1.0):
        r1, r2, t = (sign * m[:, k] / scale for k in range(3))
        r = np.column_stack([r1, r2, np.cross(r1, r2)])
        centre = -r.T @ t
        if centre[2] > 0:  # the camera is above the ground it looks at
            return float(centre[0]), float(centre[1]), float(centre[2])
    return None
