"""``bench extractor``: the row fields, the headline ratios and the CLI (no wall-clock asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compression.bench import bench_extractor, onnx_cost, parse_models
from compression.quantize import quantize_onnx
from reid.errors import ReidTraceError
from tests.cli_helpers import one_line_error, run

ROW_KEYS = {"name", "img_per_s", "latency_ms_b1", "gmacs", "params_m", "size_mb", "mAP"}
HEADLINE_KEYS = {"speedup_vs_torch_fp32", "speedup_vs_ort_fp32", "map_drop"}
FAST = ["--batch", "2", "--repeats", "1", "--repeats-b1", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_int8(tiny_fp32: Path, market: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tiny_int8.onnx"
    quantize_onnx(
        tiny_fp32, out, market, method="minmax", num_crops=8, check_crops=4, fp32_types="none",
        threads=1,
    )  # fmt: skip
    return out


def test_rows_and_headline(mnv2_fp32: Path, tiny_fp32: Path, tiny_int8: Path) -> None:
    report = bench_extractor(
        source=mnv2_fp32, baseline="mobilenetv2_x1_0@64x32",
        models={"tiny_fp32": tiny_fp32, "tiny_int8": tiny_int8},
        batch=2, threads=1, repeats=1, repeats_b1=1, warmup=1,
    )  # fmt: skip
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == [
        "mobilenetv2_x1_0_torch_fp32", "source_torch_fp32", "source_ort_fp32", "tiny_fp32",
        "tiny_int8",
    ]  # fmt: skip
    for r in rows.values():
        assert set(r) >= ROW_KEYS
        assert r["img_per_s"] > 0 and r["latency_ms_b1"] > 0 and r["size_mb"] > 0
        assert r["mAP"] is None  # no --data
    # the same network costs the same in both runtimes; the flip doubles the source's passes
    base, torch32, ort32 = (
        rows[k] for k in ("mobilenetv2_x1_0_torch_fp32", "source_torch_fp32", "source_ort_fp32")
    )
    assert torch32["passes"] == ort32["passes"] == 2 and base["passes"] == 1
    assert torch32["gmacs"] == pytest.approx(2 * base["gmacs"], rel=0.01)
    assert ort32["gmacs"] == pytest.approx(torch32["gmacs"], rel=0.02)
    assert ort32["params_m"] == pytest.approx(torch32["params_m"], rel=0.02)
    # INT8 keeps the MACs and parameters of its FP32 source and says it is INT8
    fp, q = rows["tiny_fp32"], rows["tiny_int8"]
    assert q["precision"] == "int8" and fp["precision"] == "fp32"
    assert q["gmacs"] == pytest.approx(fp["gmacs"], rel=1e-6)
    assert q["params_m"] == pytest.approx(fp["params_m"], rel=0.01)
    head = report["headline"]
    assert head["model"] == "tiny_int8" and set(head) >= HEADLINE_KEYS
    # both speeds are rounded to 0.1 img/s and the ratio to 0.01: allow exactly that much
    ratio = q["img_per_s"] / ort32["img_per_s"]
    slack = ratio * (0.05 / q["img_per_s"] + 0.05 / ort32["img_per_s"]) + 0.005
    assert head["speedup_vs_ort_fp32"] == pytest.approx(ratio, abs=slack + 1e-9)
    assert head["map_drop"] is None


def test_onnx_cost_counts_convs(tiny_fp32: Path) -> None:
    # TinyReID at 64x32, two passes (flip): stem 3->16 3x3 s2 on 32x16, expand 16->48,
    # depthwise 48 3x3, project 48->16, head 16->64 on 32x16
    cells = 32 * 16
    per_pass = cells * (16 * 27 + 48 * 16 + 48 * 9 + 16 * 48 + 64 * 16)
    gmacs, params = onnx_cost(tiny_fp32)
    assert gmacs == pytest.approx(2 * per_pass / 1e9)
    weights = 16 * 27 + 48 * 16 + 48 * 9 + 16 * 48 + 64 * 16
    biases = 16 + 48 + 48 + 16 + 64
    assert params == weights + biases + 4 * 64  # + the BNNeck's 4 vectors


def test_cli_json_and_errors(
    mnv2_fp32: Path, tiny_int8: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        ["bench", "extractor", "--json", "--source", str(mnv2_fp32), "--baseline", "none",
         "--models", f"int8={tiny_int8}", *FAST],
        capsys,
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert [r["name"] for r in report["rows"]] == ["source_torch_fp32", "source_ort_fp32", "int8"]
    assert all(set(r) >= ROW_KEYS for r in report["rows"])
    assert set(report["headline"]) >= HEADLINE_KEYS
    code, _, err = run(["bench", "extractor", "--models", "x=missing.onnx"], capsys)
    one_line_error(code, err, "missing.onnx")
    code, _, err = run(["bench", "extractor", "--baseline", "resnet9000", *FAST], capsys)
    one_line_error(code, err, "resnet9000")
    with pytest.raises(ReidTraceError, match="two models"):
        parse_models(f"a={tiny_int8},a={tiny_int8}")


def test_cli_without_models_heads_with_the_bundled_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``bench extractor`` alone: the bundled FP32 source in both runtimes against the shipped
    default embedder (INT8, one pass a crop), which is the headline."""
    from reid.embed import default_model, source_model

    code, out, _ = run(["bench", "extractor", "--json", "--baseline", "none", *FAST], capsys)
    assert code == 0
    report = json.loads(out)
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ["source_torch_fp32", "source_ort_fp32", "default"]
    assert rows["source_ort_fp32"]["model"] == str(source_model())
    assert rows["default"]["model"] == str(default_model())
    assert rows["default"]["precision"] == "int8" and rows["default"]["passes"] == 1
    assert rows["source_ort_fp32"]["passes"] == 2
    assert report["headline"]["model"] == "default"
    assert set(report["headline"]) >= HEADLINE_KEYS


def test_quantize_cli(tiny_fp32: Path, market: Path, capsys, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    code, stdout, _ = run(
        ["quantize", "--model", str(tiny_fp32), "--calibration", str(market), "--out", str(out),
         "--crops", "8", "--fp32-types", "none", "--method", "minmax", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0 and out.is_file()
    report = json.loads(stdout)  # the quantizer's own prints went to stderr
    assert report["out"] == str(out) and report["cosine_min"] >= 0.99
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(
        ["quantize", "--model", str(tiny_fp32), "--calibration", str(empty), "--out",
         str(tmp_path / "never.onnx")],
        capsys,
    )  # fmt: skip
    one_line_error(code, err, "no calibration images")
    assert not (tmp_path / "never.onnx").exists()
