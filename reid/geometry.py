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
