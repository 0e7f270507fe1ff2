"""Ground-plane association (reid.track.ground): the cue that keeps ids where boxes overlap."""

import numpy as np
import pytest

from reid.detections import Detections
from reid.errors import ReidTraceError
from reid.geometry import PinholeCamera, apply_homography
from reid.track import DeepSortTracker

CAM = PinholeCamera(
    width=480, height=360, focal_px=600.0, position=(0.0, 0.0, 5.5), yaw_deg=0.0, pitch_deg=28.0
)
H_IMG_TO_GROUND = CAM.image_to_ground


def _boxes(ground_xy: np.ndarray, height_m: float = 1.7, width_ratio: float = 0.4) -> np.ndarray:
    """Upright person boxes (xyxy) of people standing at ``ground_xy`` (n, 2) in metres."""
    feet = apply_homography(CAM.ground_to_image, ground_xy)
    out = []
    for (u, v), (x, y) in zip(feet, ground_xy, strict=True):
        pts = np.array([[x, y, 0.0], [x, y, height_m]])
        uv, _ = CAM.project(pts)
        h = float(uv[0, 1] - uv[1, 1])
        out.append([u - width_ratio * h / 2, v - h, u + width_ratio * h / 2, v])
    return np.asarray(out, np.float32)


def _frame(k: int, ground_xy: np.ndarray, emb: np.ndarray, ids: list[int]) -> Detections:
    return Detections(
        xyxy=_boxes(ground_xy),
        confidence=np.ones(len(ground_xy)),
        frame_idx=np.full(len(ground_xy), k),
        embedding=emb,
        extra={"who": np.asarray(ids)},
    )


def _ids_per_person(rows: Detections) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for who, tid in zip(rows.extra["who"].tolist(), rows.track_id.tolist(), strict=True):
        out.setdefault(who, set()).add(tid)
    return out


def _run(tracker: DeepSortTracker, frames: list[Detections]) -> dict[int, set[int]]:
    return _ids_per_person(Detections.merge([tracker.update(f) for f in frames]))


def test_one_behind_the_other_keep_their_ids_only_with_the_ground_cue() -> None:
    """Two look-alikes walk away from the camera 0.7 m apart, one behind the other: their
    boxes overlap and both pass DeepSORT's image gate, so the appearance noise alone picks who is
    who; on the ground they are 0.7 m apart and the predicted positions decide."""
    rng = np.random.default_rng(3)
    base = rng.normal(size=16)
    frames = []
    for k in range(60):
        x = 9.0 + 0.12 * k  # the camera looks along +x
        ground = np.array([[x, 0.0], [x + 0.7, 0.0]])
        emb = base + 0.25 * rng.normal(size=(2, 16))  # the same clothes, noisy histograms
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        frames.append(_frame(k, ground, emb.astype(np.float32), [1, 2]))
    image_only = _run(DeepSortTracker(max_cosine_distance=0.5), frames)
    on_ground = _run(
        DeepSortTracker(
            max_cosine_distance=0.5,
            homography=H_IMG_TO_GROUND,
            image_height=360,
            ground_cue=True,
        ),
        frames,
    )
    assert all(len(ids) == 1 for ids in on_ground.values())
    assert on_ground[1] != on_ground[2]
    assert any(len(ids) > 1 for ids in image_only.values())


def test_a_group_turn_jump_keeps_the_id_on_the_ground() -> None:
    """A walker whose foot point jumps 0.9 m sideways in one frame (a group's formation turning
    with it) is outside the image filter's gate, but within the ground radius."""
    emb = np.ones((1, 8), np.float32) / np.sqrt(8)
    frames = []
    for k in range(40):
        y = 0.1 * k - 2.0 + (0.9 if k >= 20 else 0.0)  # across the view
        frames.append(_frame(k, np.array([[12.0, y]]), emb, [1]))
    image_only = _run(DeepSortTracker(), frames)
    on_ground = _run(
        DeepSortTracker(homography=H_IMG_TO_GROUND, image_height=360, ground_cue=True), frames
    )
    assert len(image_only[1]) == 2
    assert len(on_ground[1]) == 1


def test_boxes_cut_by_the_frame_bottom_give_no_ground_measurement() -> None:
    from reid.track.ground import GroundMotion

    motion = GroundMotion(H_IMG_TO_GROUND, fps=10.0, image_height=360)
    pts, cov = motion.measure(np.array([[100, 200, 130, 280], [100, 300, 130, 360]]))
    assert np.isfinite(pts[0]).all() and np.isnan(pts[1]).all()
    assert np.all(np.linalg.eigvalsh(cov[0]) > 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 0.0},
        {"ground_weight": -1.0},
        {"ground_gate": 0.0},
        {"ground_radius": 0.0},
        {"pixel_noise": 0.0},
        {"image_height": 0},
    ],
)
def test_bad_ground_arguments(kwargs: dict) -> None:
    with pytest.raises(ReidTraceError) as err:
        DeepSortTracker(homography=H_IMG_TO_GROUND, ground_cue=True, **kwargs)
    assert err.value.hint


def test_a_bad_homography_is_refused() -> None:
    with pytest.raises(ReidTraceError, match="homography"):
        DeepSortTracker(homography=[[1, 2], [3, 4]], ground_cue=True)
