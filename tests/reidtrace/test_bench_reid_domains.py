"""``reid.evaluate.domains``: the cross-time crop choice and split, and ``bench reid-domains``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid.errors import ReidTraceError
from reid.evaluate.domains import (
    TRANSFORMS,
    bench_reid_domains,
    mot_crop_table,
    windowed_rank,
)
from reid.synth.crops import CropsConfig, generate_crops
from tests.cli_helpers import one_line_error, run


def _gt(rows: list[tuple]) -> np.ndarray:
    """MOT rows frame,id,x,y,w,h,flag (1-based frames)."""
    return np.array([(*r, -1, -1, -1) for r in rows], np.float64)


def test_crop_table_keeps_visible_tall_inside_on_grid() -> None:
    gt = _gt(
        [
            (1, 1, 10, 10, 20, 60, 1),  # kept
            (2, 1, 10, 10, 20, 60, 1),  # off the 0.5 s grid at 4 fps (step 2)
            (3, 1, 10, 10, 20, 60, 0),  # flag 0: ignored
            (3, 2, 100, 10, 20, 30, 1),  # too small (30 < 48)
            (5, 3, 200, 10, 20, 60, 1),  # covered over half by id 4
            (5, 4, 205, 10, 20, 60, 1),  # covered likewise
            (7, 5, 390, 10, 20, 60, 1),  # leaves the 400 px frame
            (9, 6, 50, 10, 20, 60, 1),  # kept: frame 9 is the last one scored
            (11, 6, 50, 10, 20, 60, 1),  # after last_frame
        ]
    )
    t = mot_crop_table(gt, frame_size=(400, 300), fps=4.0, last_frame=9, step_s=0.5)
    assert t["pid"].tolist() == [1, 6]
    assert t["frame"].tolist() == [0, 8]  # 0-based
    np.testing.assert_allclose(t["time"], [0.0, 2.0])
    np.testing.assert_allclose(t["xyxy"][0], [10, 10, 30, 70])


def test_crop_table_scales_truth_to_footage() -> None:
    gt = _gt([(1, 1, 160, 80, 48, 160, 1)])
    t = mot_crop_table(gt, frame_size=(480, 360), fps=7.0, scale=0.625)
    np.testing.assert_allclose(t["xyxy"][0], [100, 50, 130, 150])


def test_windowed_rank_ignores_own_identity_near_in_time() -> None:
    # identity 1 at t = 0, 1 and 10 s; identity 2 at t = 0.5 and 10.5 s
    pids = np.array([1, 1, 1, 2, 2])
    times = np.array([0.0, 1.0, 10.0, 0.5, 10.5])
    # crop 0's nearest is its neighbour in time (ignored: < 2 s), then identity 2, then its
    # own crop 10 s later: rank 2. Everyone else finds their far match first.
    dist = np.array(
        [
            [0.0, 0.1, 0.5, 0.3, 0.9],
            [0.1, 0.0, 0.2, 0.9, 0.9],
            [0.5, 0.2, 0.0, 0.9, 0.9],
            [0.3, 0.9, 0.9, 0.0, 0.1],
            [0.9, 0.9, 0.9, 0.1, 0.0],
        ],
        np.float32,
    )
    out = windowed_rank(dist, pids, times, gap_s=2.0)
    assert out["num_query"] == 5 and out["num_gallery"] == 5
    # APs: crop 0: 1/2; crops 1-4: 1 (crop 2 has two matches: 1 then 0, ranks 1 and 2)
    assert out["rank1"] == pytest.approx(80.0)
    assert out["mAP"] == pytest.approx(100 * (0.5 + 4) / 5)
    # a longer gap leaves only queries with a match 20 s away: none
    with pytest.raises(ReidTraceError, match="no crop has"):
        windowed_rank(dist, pids, times, gap_s=20.0)
    with pytest.raises(ReidTraceError, match="gap"):
        windowed_rank(dist, pids, times, gap_s=0.0)


def test_transforms_keep_shape_and_type() -> None:
    img = np.random.default_rng(0).integers(0, 255, (160, 60, 3), dtype=np.uint8)
    for name, f in TRANSFORMS.items():
        if f is None:
            continue
        out = f(img)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    generate_crops(
        root, CropsConfig(seed=0, cameras=2, identities=6, images_per_camera=2), workers=1
    )
    return root / "market"


@pytest.fixture(scope="module")
def tiny_shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake ../shared/data with a 40-frame TUD-like sequence of two walking coloured boxes."""
    shared = tmp_path_factory.mktemp("shared")
    seq = shared / "mot" / "TUD-Stadtmitte"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=TUD-Stadtmitte\nframeRate=10\n")
    writer = cv2.VideoWriter(
        str(seq / "TUD-Stadtmitte.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240)
    )
    rows = []
    for f in range(40):
        frame = np.full((240, 320, 3), 90, np.uint8)
        for pid, (x, colour) in {1: (10 + 2 * f, (0, 0, 200)), 2: (200, (200, 0, 0))}.items():
            frame[40:180, x : x + 50] = colour
            rows.append(f"{f + 1},{pid},{x},40,50,140,1,-1,-1,-1")
        writer.write(frame)
    writer.release()
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return shared


def test_bench_rows(market: Path, tiny_shared: Path, tiny_embedder: Path) -> None:
    rows = bench_reid_domains(
        {"tiny": tiny_embedder}, synthetic=market, shared=tiny_shared, gap_s=1.0, threads=1
    )
    r = rows["tiny"]
    assert set(r) == {
        "model", "model_id", "synthetic", "cuhk01", "PETS09-S2L1 1-397", "TUD-Stadtmitte"
    }  # fmt: skip
    assert {"mAP", "rank1", "num_query"} <= set(r["synthetic"])
    assert "skipped" in r["cuhk01"] and "skipped" in r["PETS09-S2L1 1-397"]
    tud = r["TUD-Stadtmitte"]
    # 2 people x 8 crops (every 0.5 s of 4 s); every crop has its own person >= 1 s away
    assert tud["num_gallery"] == 16 and tud["num_query"] == 16 and tud["gap_s"] == 1.0
    assert tud["rank1"] == 100.0  # red and blue boxes: trivially told apart


def test_cli_json_keys_and_bad_input(
    market: Path, tiny_embedder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["bench", "reid-domains", "--models", str(tiny_embedder), "--synthetic", str(market),
         "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert list(rows) == [tiny_embedder.name]
    assert {"synthetic", "cuhk01", "PETS09-S2L1 1-397", "TUD-Stadtmitte"} <= set(rows["tiny.onnx"])
    code, _, err = run(["bench", "reid-domains", "--synthetic", "/no/such/folder"], capsys)
    one_line_error(code, err, "is not a folder")
    code, _, err = run(["bench", "reid-domains", "--models", "/no/model.onnx"], capsys)
    one_line_error(code, err, "is not an .onnx file")
    code, _, err = run(["bench", "reid-domains", "--models", "imagenet"], capsys)
    one_line_error(code, err, "export --imagenet")


def test_model_words_name_the_bundled_files() -> None:
    """``default`` is the default embedder (INT8), ``source`` its FP32 source."""
    from reid.embed import DEFAULT_MODEL, SOURCE_MODEL
    from reidtrace.verbs_eval import _resolve_models

    assert _resolve_models("default,source") == {"default": DEFAULT_MODEL, "source": SOURCE_MODEL}


def test_export_needs_one_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["export", "--out", str(tmp_path / "m.onnx")], capsys)
    one_line_error(code, err, "exactly one of --checkpoint")
    code, _, err = run(["export", "--imagenet", "--checkpoint", "x.pt"], capsys)
    one_line_error(code, err, "exactly one of --checkpoint")


def test_table_has_a_row_per_model_and_says_what_was_skipped() -> None:
    from reidtrace.verbs_eval import domains_table

    score = {"mAP": 50.0, "rank1": 60.0}
    rows = {
        "a": {
            "synthetic": {"skipped": "no synthetic hold-out given (--synthetic)"},
            "cuhk01": score,
            "PETS09-S2L1 1-397": {**score, "gap_s": 2.0},
            "TUD-Stadtmitte": {**score, "gap_s": 2.0},
            "tracking": {"TUD-Stadtmitte": {"idf1_reid": 0.7, "idf1_histogram": 0.8}},
        },
        "b": {"cuhk01": {"mAP": 1.0, "rank1": 2.0}},
    }
    lines = domains_table(rows).splitlines()
    assert lines[2].startswith("| a | - | - | 50.0 | 60.0 | 50.0 | 60.0 | 50.0 | 60.0 | - | - |")
    assert lines[2].endswith("| 0.700 | 0.800 |")
    assert lines[3].startswith("| b | - | - | 1.0 | 2.0 |")
    assert "skipped synthetic: no synthetic hold-out given (--synthetic)" in lines
    assert "cross-time: matches at least 2 s apart" in lines
