import csv
import filecmp
import json
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.data.market import read_market
from reid.data.mot import read_mot
from reid.errors import ReidTraceError
from reid.synth.render import CameraLook, apply_look, light_drift
from reid.synth.site import RIGS, render_background
from reid.synth.world import WorldConfig, generate_world
from tests.conftest import TINY

TRUTH_FILES = ["cameras.json", "identities.csv", "trajectories.json", "contacts.csv", "world.json"]


def _frames(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    return out


def test_outputs_exist_and_are_consistent(tiny_world) -> None:
    root, summary = tiny_world
    cams = json.loads((root / "cameras.json").read_text())["cameras"]
    assert [c["name"] for c in cams] == ["cam1", "cam2"]
    for c in cams:
        frames = _frames(root / c["video"])
        assert len(frames) == c["num_frames"] == TINY.num_frames
        assert frames[0].shape == (c["height"], c["width"], 3)
        datetime.fromisoformat(c["start_time"].replace("Z", "+00:00"))
        gt = read_mot(root / c["gt"])
        assert len(gt) > 0 and gt.track_id is not None
        assert gt.frame_idx.max() < c["num_frames"]
        assert ((gt.extra["visibility"] > 0) & (gt.extra["visibility"] <= 1)).all()
    assert summary["gt_boxes"] == sum(len(read_mot(root / c["gt"])) for c in cams)
    ids = list(csv.DictReader((root / "identities.csv").open()))
    assert len(ids) == TINY.identities
    assert {r["split"] for r in ids} == {"train", "test"}
    market = read_market(root / "market", require_train=False)
    train_ids = {m.pid for m in market.train}
    test_ids = {m.pid for m in market.query + market.gallery if m.pid > 0}
    assert train_ids.isdisjoint(test_ids)
    # every query identity has a match in another camera of the gallery (Market rules)
    for q in market.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in market.gallery)


def test_same_arguments_give_identical_world(tiny_world, tmp_path) -> None:
    root, _ = tiny_world
    again = tmp_path / "again"
    generate_world(again, TINY, workers=2)  # a different worker count must not matter
    for name in TRUTH_FILES:
        assert filecmp.cmp(root / name, again / name, shallow=False), name
    for cam in ("cam1", "cam2"):
        assert filecmp.cmp(
            root / cam / "gt" / "gt.txt", again / cam / "gt" / "gt.txt", shallow=False
        )
        a, b = _frames(root / cam / "video.mp4"), _frames(again / cam / "video.mp4")
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    names_a = sorted(p.name for p in (root / "market").rglob("*.jpg"))
    names_b = sorted(p.name for p in (again / "market").rglob("*.jpg"))
    assert names_a == names_b


def test_another_seed_gives_another_world(tiny_world, tmp_path) -> None:
    root, _ = tiny_world
    other = tmp_path / "other"
    cfg = WorldConfig(**{**TINY.__dict__, "seed": TINY.seed + 1})
    generate_world(other, cfg, workers=1)
    assert (root / "cam1/gt/gt.txt").read_bytes() != (other / "cam1/gt/gt.txt").read_bytes()


def test_gt_boxes_sit_on_the_rendered_people(tiny_world) -> None:
    """Pixels that differ from the empty scene lie inside the truth boxes, and fill them."""
    root, _ = tiny_world
    checked = 0
    for cam_index, cam_json in enumerate(
        json.loads((root / "cameras.json").read_text())["cameras"]
    ):
        rig = RIGS[cam_index]
        cam = rig.camera(TINY.width, TINY.height)
        bg, _ = render_background(cam, TINY.seed)
        look = CameraLook.from_rig(rig, TINY.difficulty, TINY.width)
        zero_noise = [np.zeros((TINY.height, TINY.width, 1), np.float32)]
        gt = read_mot(root / cam_json["gt"])
        frames = _frames(root / cam_json["video"])
        for k in range(0, len(frames), 7):
            expected = apply_look(
                bg,
                look,
                light_drift(rig.start_offset_s + k / TINY.fps, cam_index + 1),
                np.random.default_rng(0),
                zero_noise,
            )
            diff = np.abs(frames[k].astype(np.int16) - expected.astype(np.int16)).max(axis=2)
            fg = diff > 30
            rows = gt[gt.frame_idx == k]
            covered = np.zeros_like(fg)
            for x0, y0, x1, y1 in rows.xyxy.astype(int):
                covered[max(y0 - 2, 0) : y1 + 8, max(x0 - 2, 0) : x1 + 3] = True  # + shadow
            # nothing that differs strongly from the empty scene lies outside every box
            stray = fg & ~covered
            assert stray.sum() <= 0.002 * fg.size + 20, (cam_json["name"], k, int(stray.sum()))
            for i in np.nonzero(rows.extra["visibility"] >= 0.999)[0]:
                x0, y0, x1, y1 = rows.xyxy[i].astype(int)
                if y1 - y0 < 40:
                    continue
                box_fg = fg[y0:y1, x0:x1]
                assert box_fg.mean() > 0.15, (cam_json["name"], k, int(rows.track_id[i]))
                # head to feet: the changed pixels span the box's height
                rows_hit = np.nonzero(box_fg.any(axis=1))[0]
                assert rows_hit[-1] - rows_hit[0] >= 0.8 * (y1 - y0), (cam_json["name"], k)
                checked += 1
    assert checked >= 5


def test_trajectories_and_contacts_follow_the_truth(tiny_world) -> None:
    root, _ = tiny_world
    traj = json.loads((root / "trajectories.json").read_text())
    for visits in traj.values():
        enters = [v["enter"] for v in visits]
        assert enters == sorted(enters)
        for v in visits:
            assert v["enter"] <= v["leave"]
    rows = list(csv.DictReader((root / "contacts.csv").open()))
    ids = {r["id"]: r for r in csv.DictReader((root / "identities.csv").open())}
    pairs = {(r["subject"], r["contact"]) for r in rows}
    assert all((b, a) in pairs for a, b in pairs)  # symmetric
    total: dict[tuple[str, str], float] = {}
    per_camera_sum: dict[tuple[str, str], float] = {}
    for r in rows:
        assert float(r["min_distance_m"]) <= 2.0 + 1e-6
        key = (r["subject"], r["contact"])
        total[key] = float(r["total_exposure_s"])
        per_camera_sum[key] = per_camera_sum.get(key, 0.0) + float(r["exposure_s"])
        t0 = datetime.fromisoformat(r["start"].replace("Z", "+00:00"))
        t1 = datetime.fromisoformat(r["end"].replace("Z", "+00:00"))
        assert t1 - t0 >= timedelta(0)
    assert all(v >= 5.0 - 1e-6 for v in total.values())
    # overlapping views never make the total larger than the per-camera sum
    assert all(total[k] <= per_camera_sum[k] + 0.1 for k in total)
    # members of a group that stayed in view together are contacts of each other
    grouped = [
        (a, b) for a, b in pairs if ids[a]["group"] != "-1" and ids[a]["group"] == ids[b]["group"]
    ]
    assert grouped, "the tiny world should contain at least one group contact"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cameras": 0}, "cameras"),
        ({"cameras": 99}, "cameras"),
        ({"identities": 6, "groups": 4}, "groups"),
        ({"minutes": 0}, "minutes"),
        ({"fps": 0}, "fps"),
        ({"width": 100}, "frame size"),
        ({"difficulty": 1.5}, "difficulty"),
        ({"start": "yesterday"}, "ISO"),
    ],
)
def test_impossible_worlds_are_refused(kwargs, needle, tmp_path) -> None:
    with pytest.raises(ReidTraceError, match=needle):
        generate_world(tmp_path / "w", WorldConfig(**kwargs))
    assert not (tmp_path / "w").exists()


def test_output_folder_safety(tmp_path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("precious")
    with pytest.raises(ReidTraceError, match="not empty"):
        generate_world(busy, TINY)
    assert (busy / "thesis.txt").read_text() == "precious"
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ReidTraceError, match="not a folder"):
        generate_world(afile, TINY)


@pytest.mark.parametrize("seed", [0, 7])
def test_group_members_walk_without_jumps(seed) -> None:
    """Group members' offsets used to turn per segment, so at every corner and stop each
    member jumped up to ~2 m between frames; now nobody moves faster than a run."""
    from reid.synth.world import build_people

    people = build_people(WorldConfig(seed=seed))
    t = np.arange(0.0, 120.0, 0.1)
    members = [p for p in people if p.group >= 0]
    assert members, "the default world has groups"
    for p in members:
        st = p.states(t)
        step = np.hypot(np.diff(st["x"]), np.diff(st["y"]))
        step = step[np.isfinite(step)]
        assert step.max() < 0.5, f"person {p.pid} moved {step.max():.2f} m in 0.1 s"
