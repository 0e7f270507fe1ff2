"""Constant-velocity Kalman filter of a person box in the image, as DeepSORT defines it.

The state is ``(x, y, a, h)`` (box centre, aspect ratio width/height, height) and their
velocities; time is in frames. The noise of position and velocity scales with the box height,
so a near (tall) person may move more pixels per frame than a far one. These are plain functions
of ``(mean, covariance)`` so a tracker's state is nothing but arrays (``reid.track.state``).

The arithmetic (operand order and dtypes) follows deep-sort-realtime 1.3.2, whose filter this
replaces, so that tracks stored before and after the change are bit-identical: a box measured
as float32 starts a float32 mean, and the first prediction mixes it with float64 noise exactly
as before. ``tests/reid/track/test_deepsort.py`` checks the identity against that library.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

CHI2_95 = {2: 5.9915, 4: 9.4877}
"""0.95 quantiles of the chi-square distribution (2 and 4 degrees of freedom): gate thresholds."""

STD_POSITION = 1.0 / 20  # position noise, as a fraction of the box height
STD_VELOCITY = 1.0 / 160  # velocity noise, as a fraction of the box height

_MOTION = np.eye(8)
_MOTION[np.arange(4), np.arange(4, 8)] = 1.0  # x' = x + v (one frame)
_OBSERVE = np.eye(4, 8)  # the filter observes (x, y, a, h)


def to_xyah(ltwh: np.ndarray) -> np.ndarray:
    """A (left, top, width, height) float32 box as the filter's measurement (x, y, a, h)."""
    out = np.array(ltwh, dtype=np.float32)
    out[:2] += out[2:] / 2
    out[2] /= out[3]
    return out


def to_ltwh(mean: np.ndarray) -> np.ndarray:
    """The box (left, top, width, height) of a state mean."""
    out = mean[:4].copy()
    out[2] *= out[3]
    out[:2] -= out[2:] / 2
    return out


def to_ltrb(mean: np.ndarray) -> np.ndarray:
    """The box corners (x1, y1, x2, y2) of a state mean."""
    out = to_ltwh(mean)
    out[2:] = out[:2] + out[2:]
    return out


def initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A new track's state from its first measurement: at rest, uncertain in proportion to h."""
    mean = np.concatenate([z, np.zeros_like(z)])
    h = z[3]
    std = [
        2 * STD_POSITION * h, 2 * STD_POSITION * h, 1e-2, 2 * STD_POSITION * h,
        10 * STD_VELOCITY * h, 10 * STD_VELOCITY * h, 1e-5, 10 * STD_VELOCITY * h,
    ]  # fmt: skip
    return mean, np.diag(np.square(std))


def predict(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state one frame later."""
    h = mean[3]
    pos = [STD_POSITION * h, STD_POSITION * h, 1e-2, STD_POSITION * h]
    vel = [STD_VELOCITY * h, STD_VELOCITY * h, 1e-5, STD_VELOCITY * h]
    noise = np.diag(np.square(np.array(pos + vel)))  # np.r_ cost a third of the tracker's time
    return np.dot(_MOTION, mean), np.linalg.multi_dot((_MOTION, cov, _MOTION.T)) + noise


def project(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state's distribution in measurement space, measurement noise included."""
    h = mean[3]
    noise = np.diag(np.square([STD_POSITION * h, STD_POSITION * h, 1e-1, STD_POSITION * h]))
    projected = np.linalg.multi_dot((_OBSERVE, cov, _OBSERVE.T))
    return np.dot(_OBSERVE, mean), projected + noise


def update(mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The state corrected by measurement ``z`` (x, y, a, h)."""
    z_mean, z_cov = project(mean, cov)
    factor = scipy.linalg.cho_factor(z_cov, lower=True, check_finite=False)
    gain = scipy.linalg.cho_solve(factor, np.dot(cov, _OBSERVE.T).T, check_finite=False).T
    new_mean = mean + np.dot(z - z_mean, gain.T)
    return new_mean, cov - np.linalg.multi_dot((gain, z_cov, gain.T))


def gating_distance(
    mean: np.ndarray, cov: np.ndarray, zs: np.ndarray, only_position: bool = False
) -> np.ndarray:
    """Squared Mahalanobis distances (n,) of measurements ``zs`` (n, 4) to the state."""
    z_mean, z_cov = project(mean, cov)
    if only_position:
        z_mean, z_cov, zs = z_mean[:2], z_cov[:2, :2], zs[:, :2]
    chol = np.linalg.cholesky(z_cov)
    white = scipy.linalg.solve_triangular(
        chol, (zs - z_mean).T, lower=True, check_finite=False, overwrite_b=True
    )
    return np.sum(white * white, axis=0)
