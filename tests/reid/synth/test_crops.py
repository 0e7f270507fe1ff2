import filecmp

import cv2
import pytest

from reid.data.market import read_market
from reid.errors import ReidTraceError
from reid.synth.crops import CropsConfig, generate_crops
from reid.synth.preview import write_preview

SMALL = CropsConfig(seed=2, cameras=3, identities=12, images_per_camera=3)


def test_crops_are_a_market_folder_and_deterministic(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    summary = generate_crops(a, SMALL, workers=1)
    generate_crops(b, SMALL, workers=2)
    data = read_market(a / "market")
    assert {m.pid for m in data.train}.isdisjoint({m.pid for m in data.gallery if m.pid > 0})
    assert data.num_train_pids == summary["market"]["train_ids"]
    assert len(data.query) == summary["market"]["query_images"] > 0
    for q in data.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in data.gallery)
    img = cv2.imread(str(data.train[0].path))
    assert img.shape == (128, 64, 3)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def test_preview_shows_every_camera(tmp_path, tiny_world) -> None:
    root, _ = tiny_world
    out = write_preview(root, path=tmp_path / "p.png")
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] > 128 and sheet.std() > 10


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cameras": 1}, "cameras"),
        ({"identities": 1}, "identities"),
        ({"images_per_camera": 0}, "images"),
    ],
)
def test_bad_crop_configs_are_refused(kwargs, needle, tmp_path) -> None:
    with pytest.raises(ReidTraceError, match=needle):
        generate_crops(tmp_path / "c", CropsConfig(**kwargs))
