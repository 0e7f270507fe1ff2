"""``reidtrace compress``: the chain end to end through the CLI, resume, and bad inputs.

The source is the registry's smallest MobileNetV2 (``mobilenetv2_x1_0_128x64``, random
weights, as a training checkpoint) on a rendered 16-person Market folder; the flags keep every
stage to seconds (one sensitivity ratio, L2 channel choice, 2 distillation batches, MinMax
calibration on 8 crops, one timed run a model).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from compression.compress import STAGES, normalize_budget  # noqa: E402
from compression.plan import CompressionPlan  # noqa: E402
from tests.cli_helpers import one_line_error, run  # noqa: E402

ARCH = "mobilenetv2_x1_0_128x64"
FAST = [
    "--ratios", "0.9", "--criterion", "l2", "--samples", "4", "--distill-iters", "2",
    "--calibration-crops", "8", "--calibration-method", "minmax", "--fp32-types",
    "depthwise_conv", "--bench-repeats", "1", "--threads", "1",
]  # fmt: skip
REPORT_KEYS = {
    "format", "version", "args", "flip", "plan", "distill", "quantization", "rows", "summary",
    "speed", "stage_seconds", "files", "source_untrained",
}  # fmt: skip
ROW_KEYS = {
    "stage", "file", "precision", "passes", "gmacs", "params_m", "size_mb", "mAP", "rank1",
    "img_per_s", "latency_ms_b1",
}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(Market folder with 8 training identities, checkpoint of the small MobileNetV2)."""
    from reid.models import create_model, save_checkpoint
    from reid.synth.crops import CropsConfig, generate_crops

    root = tmp_path_factory.mktemp("compress")
    generate_crops(
        root, CropsConfig(seed=0, cameras=3, identities=16, images_per_camera=4), workers=1
    )
    torch.manual_seed(0)
    # random weights, marked as such: the report must say its mAP drop means nothing
    extra = {"untrained": True}
    ckpt = save_checkpoint(root / "mnv2.pt", create_model(ARCH), epoch=0, extra=extra)
    return root / "market", ckpt


def _argv(model: Path | str, data: Path, out: Path, budget: str = "macs=0.5") -> list[str]:
    return ["compress", "--model", str(model), "--data", str(data), "--budget", budget,
            "--out", str(out), *FAST]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "want"),
    [("macs=0.5", "0.5x"), ("gmacs=0.1", "0.1G"), ("mmacs=90", "90M"), ("latency=3ms", "3ms"),
     ("latency=3", "3ms"), ("0.25x", "0.25x"), ("93M", "93M"),
     ("keep: a.b=8, c = 16", "keep:a.b=8,c=16"), ("KEEP:a=8", "keep:a=8")],
)  # fmt: skip
def test_budget_specs_map_to_the_search_syntax(given: str, want: str) -> None:
    assert normalize_budget(given) == want


def test_chain_runs_resumes_and_refuses_other_arguments(world, tmp_path, capsys, monkeypatch):
    import compression.compress as cc
    import compression.distill as distill

    data, ckpt = world
    out = tmp_path / "run"
    argv = _argv(ckpt, data, out)

    # 1. killed in the evaluate stage: the earlier stages are recorded, nothing looks finished
    def killed(self):
        raise RuntimeError("killed")

    monkeypatch.setattr(cc._Run, "evaluate", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run(argv, capsys)
    capsys.readouterr()
    state = json.loads((out / "stages.json").read_text())
    assert list(state["stages"]) == ["plan", "prune", "distill", "export", "quantize"]
    assert state["complete"] is False
    assert not (out / "report.json").exists()
    monkeypatch.undo()

    # 2. the same command resumes at evaluate: the finished stages must not run again
    def redone(*_a, **_k):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(cc, "search_plan", redone)
    monkeypatch.setattr(cc, "prune_model", redone)
    monkeypatch.setattr(distill, "distill_finetune", redone)
    code, stdout, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert set(report) >= REPORT_KEYS
    assert [r["stage"] for r in report["rows"]] == ["source", "pruned", "distilled", "int8"]
    for row in report["rows"]:
        assert set(row) >= ROW_KEYS
        assert 0 <= row["mAP"] <= 100 and row["img_per_s"] > 0
    for name in ("model_int8.onnx", "plan.json", "report.md", "report.json", "pareto.png"):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    # an untrained source is named as such in the JSON and the markdown, a trained one is not
    from compression.chain_report import UNTRAINED_NOTE, markdown

    assert report["source_untrained"] is True and report["summary"]["note"] == UNTRAINED_NOTE
    assert UNTRAINED_NOTE in (out / "report.md").read_text()
    assert UNTRAINED_NOTE not in markdown({**report, "source_untrained": False})
    assert json.loads((out / "stages.json").read_text())["complete"] is True
    assert list(json.loads((out / "stages.json").read_text())["stages"]) == list(STAGES)

    # the plan keeps the budget, and its precision is what the quantizer kept in FP32
    plan = CompressionPlan.load(out / "plan.json")
    assert plan.macs <= 0.5 * plan.base_macs
    assert report["plan"]["macs"] == plan.macs
    kinds = {r.kind: {x.precision for x in plan.layers if x.kind == r.kind} for r in plan.layers}
    assert kinds["depthwise"] == {"fp32"} and kinds["conv"] == {"int8"}
    assert report["quantization"]["fp32_types"] == ["depthwise_conv"]
    # the pruned checkpoint really has the planned cost
    from compression.prune import count_macs
    from reid.models import load_checkpoint

    pruned, pruned_meta = load_checkpoint(out / "pruned.pt")
    assert count_macs(pruned) == plan.macs
    assert pruned_meta["extra"]["untrained"] is True  # pruning random weights trains nothing

    # the INT8 file is a servable embedder: `reidtrace evaluate --model` scores it as the run did
    code, stdout, err = run(["evaluate", "--model", str(out / "model_int8.onnx"), "--data",
                             str(data), "--json"], capsys)  # fmt: skip
    assert code == 0, err
    assert json.loads(stdout)["mAP"] == pytest.approx(report["rows"][-1]["mAP"], abs=0.01)

    # 3. a finished folder: the same command returns its report; other arguments are refused
    code, stdout, _ = run([*argv, "--json"], capsys)
    assert code == 0 and json.loads(stdout) == report
    code, _, err = run(_argv(ckpt, data, out, budget="macs=0.4"), capsys)
    one_line_error(code, err, "other arguments")


@pytest.mark.parametrize("word", ["default", "source"])
def test_the_words_for_the_bundled_source_are_recorded_as_given(world, word, tmp_path) -> None:
    """Both mean the bundled FP32 ``source_fp32.onnx`` (the INT8 default is not trainable); the
    run folder records the word, not a path, so it resumes wherever the package is installed."""
    from compression.compress import CompressConfig, _check_inputs
    from reid.embed import SOURCE_MODEL

    market, _ = world
    cfg = CompressConfig(model=word, data=market, budget="macs=0.5", out=tmp_path / "o")
    assert cfg.recorded()["model"] == word
    _, meta, source_onnx = _check_inputs(cfg)
    assert meta["arch"] == "mobilenetv2_x1_0" and source_onnx == SOURCE_MODEL.resolve()


def test_unknown_architecture_is_one_line(world, tmp_path, capsys) -> None:
    from reid.models.weights import CHECKPOINT_FORMAT

    data, _ = world
    bad = tmp_path / "alien.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, "arch": "alien_net",
                "num_classes": 1, "state_dict": {}}, bad)  # fmt: skip
    out = tmp_path / "run"
    code, _, err = run(_argv(bad, data, out), capsys)
    one_line_error(code, err, "alien_net")
    assert not out.exists()


def test_impossible_budget_writes_nothing(world, tmp_path, capsys) -> None:
    data, ckpt = world
    out = tmp_path / "run"
    code, _, err = run(_argv(ckpt, data, out, budget="macs=0.01"), capsys)
    one_line_error(code, err, "below what pruning can reach")
    assert not out.exists()


def test_empty_calibration_folder_is_one_line(world, tmp_path, capsys) -> None:
    data, ckpt = world
    empty = tmp_path / "calib"
    empty.mkdir()
    out = tmp_path / "run"
    code, _, err = run([*_argv(ckpt, data, out), "--calibration", str(empty)], capsys)
    one_line_error(code, err, "no calibration images")
    assert not out.exists()


def test_missing_data_split_is_one_line(world, tmp_path, capsys) -> None:
    data, ckpt = world
    partial = tmp_path / "market"
    shutil.copytree(data / "bounding_box_train", partial / "bounding_box_train")
    shutil.copytree(data / "bounding_box_test", partial / "bounding_box_test")
    out = tmp_path / "run"
    code, _, err = run(_argv(ckpt, partial, out), capsys)
    one_line_error(code, err, "query")
    assert not out.exists()


# two groups of the small MobileNetV2 (same names as the shipped x1.0): a block's expansion and
# the last block's projection, as in the default embedder's recipe
KEEP = "keep:backbone.conv7.2.conv1.conv=800,backbone.conv8.0.conv3.0=256"


def test_keep_budget_and_teacher_flip_run_record_and_resume(world, tmp_path, capsys, monkeypatch):
    """Explicit widths skip the search; the flipped teacher reaches the distillation and is
    recorded, so resuming with another --teacher-flip is refused."""
    import compression.compress as cc
    import compression.distill as distill
    from compression.prune import count_macs, find_groups, layer_costs, plan_macs
    from reid.models import load_checkpoint

    data, ckpt = world
    out = tmp_path / "run"
    base = [*_argv(ckpt, data, out, budget=KEEP), "--no-flip", "--teacher-flip",
            "--distill-terms", "embed,relational", "--bench-repeats", "0"]  # fmt: skip
    argv = [*base, "--lr", "5e-5", "--bias-crops", "4"]

    def no_search(*_a, **_k):
        raise AssertionError("a keep: budget must not measure or search")

    seen: list = []
    real = distill.distill_finetune

    def spy(student, teacher, data_, out_, cfg, progress=None):
        seen.append(cfg)
        return real(student, teacher, data_, out_, cfg, progress)

    monkeypatch.setattr(cc, "search_plan", no_search)
    monkeypatch.setattr(cc, "cosine_proxy", no_search)
    monkeypatch.setattr(distill, "distill_finetune", spy)
    code, stdout, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    report = json.loads(stdout)

    # the plan: exactly the asked widths, every other group whole, MACs exact
    plan = CompressionPlan.load(out / "plan.json")
    source, _ = load_checkpoint(ckpt)
    groups = find_groups(source)
    asked = {"backbone.conv7.2.conv1.conv": 800, "backbone.conv8.0.conv3.0": 256}
    assert plan.keep() == {g.name: asked.get(g.name, g.channels) for g in groups}
    assert plan.budget == KEEP and plan.proxy == "none"
    assert plan.macs == plan_macs(layer_costs(source, groups), asked) < plan.base_macs
    pruned, _ = load_checkpoint(out / "pruned.pt")
    assert count_macs(pruned) == plan.macs == report["plan"]["macs"]

    # the flipped teacher: in the distillation's config, the stage, stages.json and the report
    assert len(seen) == 1 and seen[0].teacher_flip is True and seen[0].lr == 5e-5
    assert seen[0].feature_weight == 0 and seen[0].logit_weight == 0
    assert report["distill"]["teacher_flip"] is True and report["distill"]["lr"] == 5e-5
    args = json.loads((out / "stages.json").read_text())["args"]
    assert args["teacher_flip"] is True and args["budget"] == KEEP and args["bias_crops"] == 4
    assert "teacher flip-averaged" in (out / "report.md").read_text()
    assert report["flip"] is False

    # another --teacher-flip is another run
    code, _, err = run([*argv[: argv.index("--teacher-flip")], "--no-teacher-flip",
                        *argv[argv.index("--teacher-flip") + 1 :]], capsys)  # fmt: skip
    one_line_error(code, err, "teacher_flip")

    # a folder recorded before --lr and --bias-crops existed (no such keys in its stages.json)
    # resumes under the defaults that reproduce what it did, and refuses other values
    state = json.loads((out / "stages.json").read_text())
    del state["args"]["lr"], state["args"]["bias_crops"]
    (out / "stages.json").write_text(json.dumps(state))
    code, _, err = run(argv, capsys)
    one_line_error(code, err, "other arguments")
    code, stdout, err = run([*base, "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout) == report


@pytest.mark.parametrize(
    ("budget", "needle"),
    [
        ("keep:backbone.nope=8", "no channel group 'backbone.nope'"),
        ("keep:backbone.conv8.0.conv3.0=321", "it has 320"),
        ("keep:backbone.conv8.0.conv3.0=0", "keeps no channels"),
        ("keep:backbone.conv8.0.conv3.0", "cannot read"),
        ("keep:backbone.conv8.0.conv3.0=8,backbone.conv8.0.conv3.0=16", "twice"),
    ],
)
def test_bad_keep_budget_is_one_line_and_writes_nothing(world, tmp_path, capsys, budget, needle):
    data, ckpt = world
    out = tmp_path / "run"
    code, _, err = run(_argv(ckpt, data, out, budget=budget), capsys)
    one_line_error(code, err, needle)
    assert not out.exists()


def test_unknown_group_lists_the_groups(world, tmp_path, capsys) -> None:
    data, ckpt = world
    code, _, err = run(_argv(ckpt, data, tmp_path / "run", budget="keep:x=8"), capsys)
    one_line_error(code, err, "backbone.conv8.0.conv3.0 (320)")


@pytest.mark.parametrize(
    ("model", "flip", "want"),
    [("default", False, True), ("source", False, True), ("default", True, False),
     ("ckpt", False, False)],
)  # fmt: skip
def test_teacher_flip_default_follows_the_source_file(world, tmp_path, model, flip, want) -> None:
    """On only where the one-pass student replaces a source file that flip-averages."""
    from compression.compress import CompressConfig

    market, ckpt = world
    spec = str(ckpt) if model == "ckpt" else model
    cfg = CompressConfig(model=spec, data=market, budget="macs=0.5", out=tmp_path / "o", flip=flip)
    cfg.validate().resolve()
    assert cfg.teacher_flip is want and cfg.recorded()["teacher_flip"] is want
    # `all` with the flipped teacher drops the feature term (and says so); else all four stay
    assert ("feature" in cfg.distill_terms) is not want
    assert cfg.dropped_terms == (("feature",) if want else ())


def test_feature_term_with_teacher_flip_is_one_line(world, tmp_path, capsys) -> None:
    data, ckpt = world
    out = tmp_path / "run"
    argv = [*_argv(ckpt, data, out), "--teacher-flip", "--distill-terms", "feature,embed"]
    code, _, err = run(argv, capsys)
    one_line_error(code, err, "feature term cannot be used with a flip-averaged teacher")
    assert not out.exists()
