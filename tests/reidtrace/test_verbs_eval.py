"""``reidtrace evaluate`` and ``reidtrace export`` on a tiny synthetic Market folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reid.synth.crops import CropsConfig, generate_crops
from tests.cli_helpers import one_line_error, run

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

METRIC_KEYS = {"mAP", "rank1", "rank5", "rank10", "mINP", "num_query", "num_gallery"}
RUN_KEYS = {"model", "rerank", "flip", "seconds"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Under `pytest -n 2` on 2 cores, two OpenMP threads per worker run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crops")
    cfg = CropsConfig(seed=0, cameras=3, identities=8, images_per_camera=4)
    generate_crops(root, cfg, workers=1)
    return root / "market"


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    from reid.models import create_model

    torch.manual_seed(0)
    return create_model("osnet_x0_25_128x64").eval()


@pytest.fixture(scope="module")
def onnx_model(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reid.models.export import export_onnx

    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def checkpoint(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reid.models import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", model, epoch=3)


def test_help_lists_the_verbs(capsys) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "evaluate" in out and "export" in out
    for verb in ("evaluate", "export"):
        code, out, _ = run([verb, "--help"], capsys)
        assert code == 0 and "Usage" in out


def test_evaluate_onnx_json(market: Path, onnx_model: Path, model: torch.nn.Module, capsys) -> None:
    code, out, _ = run(
        ["evaluate", "--data", str(market), "--model", str(onnx_model), "--json"], capsys
    )
    assert code == 0
    report = json.loads(out)
    assert set(report) == METRIC_KEYS | RUN_KEYS
    # the exported model through ONNX Runtime scores like the PyTorch model through the training
    # loop's own evaluator (its own image loading and embedding): the same numbers, not any in 0-100
    from reid.data.market import read_market
    from reid.train import evaluate

    expected = evaluate(model, read_market(market, require_train=False)).as_percent()
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP"):
        assert report[key] == pytest.approx(expected[key], abs=0.05), (key, report, expected)
    assert report["rank1"] <= report["rank5"] <= report["rank10"]
    assert report["num_query"] > 0
    assert report["num_gallery"] == len(list((market / "bounding_box_test").iterdir()))
    assert (report["model"], report["rerank"], report["flip"]) == (str(onnx_model), False, False)


def test_evaluate_rerank_flip_and_human_output(market: Path, onnx_model: Path, capsys) -> None:
    args = ["evaluate", "--data", str(market), "--model", str(onnx_model), "--rerank", "--flip"]
    code, out, _ = run([*args, "--batch-size", "7", "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    assert report["rerank"] is True and report["flip"] is True
    code, out, _ = run(args, capsys)
    assert code == 0
    for label in ("mAP", "rank-1", "rank-5", "rank-10", "mINP", "re-ranked"):
        assert label in out
    assert f"{report['mAP']:6.2f} %" in out


def test_checkpoint_scores_like_its_export(
    market: Path, onnx_model: Path, checkpoint: Path, capsys
) -> None:
    scores = []
    for model in (onnx_model, checkpoint):
        code, out, err = run(
            ["evaluate", "--data", str(market), "--model", str(model), "--json"], capsys
        )
        assert code == 0, err
        scores.append(json.loads(out))
    for key in ("mAP", "rank1", "mINP"):
        assert abs(scores[0][key] - scores[1][key]) < 0.5, (key, scores)


def test_export_verb(checkpoint: Path, tmp_path: Path, capsys) -> None:
    out_path = tmp_path / "exported.onnx"
    argv = ["export", "--checkpoint", str(checkpoint), "--out", str(out_path), "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["out"] == str(out_path) and out_path.is_file()
    assert report["arch"] == "osnet_x0_25_128x64" and report["embed_dim"] == 512
    assert (report["input_height"], report["input_width"], report["opset"]) == (128, 64, 17)


def test_export_verb_human_output(
    checkpoint: Path, onnx_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def fake_export(src: Path, out: Path, *, opset: int, flip: bool) -> Path:  # tested above
        assert (src, opset, flip) == (checkpoint, 18, True)
        return Path(shutil.copyfile(onnx_model, out))

    monkeypatch.setattr("reid.models.export.export_checkpoint", fake_export)
    out_path = tmp_path / "m.onnx"
    argv = ["export", "--checkpoint", str(checkpoint), "--out", str(out_path), "--opset", "18"]
    code, out, _ = run([*argv, "--flip"], capsys)
    assert code == 0 and "ONNX Runtime matches PyTorch" in out and str(out_path) in out
    assert "flip-averaged" in out


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d, m: ["--data", str(d), "--model", str(m)], "lacks"),  # not Market-format
        (lambda d, m: ["--data", str(d / "nope"), "--model", str(m)], "does not exist"),
        (lambda d, m: ["--data", str(d), "--model", str(d / "missing.onnx")], "does not exist"),
        (lambda d, m: ["--data", str(d), "--model", str(d / "model.txt")], "extension"),
    ],
)
def test_evaluate_bad_inputs_are_one_line(
    tmp_path: Path, onnx_model: Path, make, needle, capsys
) -> None:
    (tmp_path / "model.txt").write_text("not a model")
    code, _, err = run(["evaluate", *make(tmp_path, onnx_model)], capsys)
    one_line_error(code, err, needle)


def test_evaluate_bad_model_with_good_data(market: Path, tmp_path: Path, capsys) -> None:
    for name, needle in (("model.txt", "extension"), ("missing.pt", "does not exist")):
        code, _, err = run(
            ["evaluate", "--data", str(market), "--model", str(tmp_path / name)], capsys
        )
        one_line_error(code, err, needle)
    fake = tmp_path / "fake.onnx"
    fake.write_text("hello")
    code, _, err = run(["evaluate", "--data", str(market), "--model", str(fake)], capsys)
    one_line_error(code, err, "not a loadable ONNX model")


def test_the_words_default_and_source_name_the_bundled_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reid.embed import DEFAULT_MODEL, SOURCE_MODEL
    from reid.errors import ReidTraceError
    from reid.evaluate.run import resolve_model

    monkeypatch.chdir(tmp_path)
    assert resolve_model("default") == DEFAULT_MODEL
    assert resolve_model("Source") == SOURCE_MODEL
    (tmp_path / "source").mkdir()  # a folder of that name here wins, and is refused
    with pytest.raises(ReidTraceError, match="extension"):
        resolve_model("source")


def test_evaluate_without_a_shipped_default_model(
    market: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr("reid.embed.onnx.DEFAULT_MODEL", tmp_path / "weights" / "default.onnx")
    code, _, err = run(["evaluate", "--data", str(market)], capsys)
    one_line_error(code, err, "no default model shipped yet")
    assert "--model" in err
    code, out, _ = run(["evaluate", "--data", str(market), "--json"], capsys)
    assert code == 2 and "no default model shipped yet" in json.loads(out)["error"]


def test_evaluate_bad_batch_size_is_a_usage_error(market: Path, onnx_model: Path, capsys) -> None:
    argv = ["evaluate", "--data", str(market), "--model", str(onnx_model), "--batch-size", "0"]
    code, _, err = run(argv, capsys)
    one_line_error(code, err, "--batch-size")


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--checkpoint", "{tmp}/missing.pt", "--out", "{tmp}/m.onnx"], "does not exist")],
)
def test_export_bad_inputs_are_one_line(tmp_path: Path, args, needle, capsys) -> None:
    argv = ["export", *(a.format(tmp=tmp_path) for a in args)]
    code, _, err = run(argv, capsys)
    one_line_error(code, err, needle)


def test_export_to_a_non_onnx_name(checkpoint: Path, tmp_path: Path, capsys) -> None:
    argv = ["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.txt")]
    code, _, err = run(argv, capsys)
    one_line_error(code, err, ".onnx")
    assert not (tmp_path / "m.txt").exists()


def test_help_and_onnx_evaluation_never_import_torch(market: Path, onnx_model: Path) -> None:
    """The serving install has no torch: `--help` and evaluating an .onnx model must not need it."""
    code = (
        "import json, sys\n"
        "import reidtrace.cli\n"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules\n"
        "from reid.evaluate.run import evaluate_model\n"
        f"report = evaluate_model({str(market)!r}, {str(onnx_model)!r}, threads=1)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(json.dumps(report))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == METRIC_KEYS | RUN_KEYS
