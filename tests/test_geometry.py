import numpy as np
import pytest

from reid.errors import ReidTraceError
from reid.geometry import PinholeCamera, apply_homography, as_homography, camera_position
from reid.synth.site import RIGS


@pytest.mark.parametrize("rig", RIGS, ids=lambda r: r.name)
def test_ground_image_round_trip(rig) -> None:
    cam = rig.camera(480, 360)
    rng = np.random.default_rng(0)
    pix = np.column_stack([rng.uniform(0, 480, 200), rng.uniform(200, 360, 200)])
    ground = apply_homography(cam.image_to_ground, pix)
    back = apply_homography(cam.ground_to_image, ground)
    assert np.allclose(back, pix, atol=1e-6)


def test_homography_agrees_with_projection() -> None:
    cam = PinholeCamera(480, 360, 400.0, (0.0, 0.0, 5.0), 30.0, 25.0)
    pts = np.array([[10.0, 6.0], [14.0, 2.0], [8.0, 9.5]])
    uv, depth = cam.project(np.column_stack([pts, np.zeros(3)]))
    assert (depth > 0).all()
    assert np.allclose(apply_homography(cam.ground_to_image, pts), uv, atol=1e-9)


def test_camera_looks_where_it_points() -> None:
    # a point straight ahead along the yaw, on the ground, projects onto the image's centre column
    cam = PinholeCamera(480, 360, 400.0, (0.0, 0.0, 5.0), 90.0, 30.0)
    ahead = np.array([[0.0, 5.0 / np.tan(np.radians(30.0)), 0.0]])
    uv, _ = cam.project(ahead)
    assert np.allclose(uv[0], [240, 180], atol=1e-6)
    # something to the camera's right (east when looking north) lands on the right half
    uv_r, _ = cam.project(np.array([[3.0, 8.0, 0.0]]))
    assert uv_r[0, 0] > 240


def test_points_at_infinity_become_nan() -> None:
    h = np.array([[1.0, 0, 0], [0, 1, 0], [1, 0, 0]])
    out = apply_homography(h, np.array([[0.0, 3.0], [1.0, 1.0]]))
    assert np.isnan(out[0]).all() and np.allclose(out[1], [1.0, 1.0])


@pytest.mark.parametrize(
    "value",
    [[[1, 0], [0, 1]], [[0] * 3] * 3, "not a matrix", [[1, 0, 0], [0, 1, 0], [0, 0, np.nan]]],
)
def test_bad_homographies_are_user_errors(value) -> None:
    with pytest.raises(ReidTraceError):
        as_homography(value)


def test_homography_is_normalised() -> None:
    assert as_homography(np.eye(3) * 4)[2, 2] == 1.0


@pytest.mark.parametrize("rig", RIGS, ids=lambda r: r.name)
def test_camera_position_is_recovered_from_the_homography(rig) -> None:
    cam = rig.camera(480, 360)
    got = camera_position(cam.image_to_ground, 480, 360)
    assert got is not None
    assert np.allclose(got, cam.position, atol=1e-6)
    # any overall scale of the homography describes the same camera
    assert np.allclose(camera_position(cam.image_to_ground * -3.0, 480, 360), cam.position)


def test_camera_position_of_a_non_camera_homography_is_none() -> None:
    # a pure scaling (the tests' "10 px = 1 m" top-down map) is no pinhole camera above ground
    assert camera_position(np.diag([0.1, 0.1, 1.0]), 640, 480) is None
