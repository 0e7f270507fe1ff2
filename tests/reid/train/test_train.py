"""The training recipe end to end on a tiny synthetic set: loss falls, runs resume, CLI errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from reid.errors import ReidTraceError
from reid.evaluate.run import evaluate_model
from reid.models import create_model, extract_features, load_checkpoint
from reid.train import LRSchedule, TrainConfig, train
from reidtrace.cli import main

ARCH = "osnet_x0_25_128x64"


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=16, num_instances=4, eval_every=1, workers=0, threads=1)
    return TrainConfig(data=data, arch=ARCH, out=out, **{**base, **kw})


def log_rows(run: Path) -> list[dict[str, str]]:
    with (run / "log.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def two_epochs(tiny_market: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("runs") / "run"
    stages: list[tuple[str, int, int]] = []
    summary = train(config(tiny_market, out), progress=lambda *a: stages.append(a))
    summary["stages"] = stages
    return out, summary


def test_two_epochs_lower_the_loss(two_epochs: tuple[Path, dict]) -> None:
    _, summary = two_epochs
    losses = summary["batch_losses"]
    assert len(losses) >= 8 and all(np.isfinite(losses))
    k = 3
    assert np.mean(losses[-k:]) < np.mean(losses[:k])


def test_run_folder_holds_log_checkpoints_and_config(
    two_epochs: tuple[Path, dict], tiny_market: Path
) -> None:
    run, summary = two_epochs
    rows = log_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) == {
        "epoch", "loss", "ce", "triplet", "distill", "lr", "images_per_s", "seconds", "mAP", "rank1"
    }  # fmt: skip
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    # the logged scores are those of the saved weights: evaluating last.pt again gives them
    again = evaluate_model(tiny_market, run / "last.pt")
    assert float(rows[-1]["mAP"]) == pytest.approx(again["mAP"], abs=0.01)
    assert float(rows[-1]["rank1"]) == pytest.approx(again["rank1"], abs=0.01)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["arch"] == ARCH and cfg["num_classes"] == summary["num_classes"] == 8
    model, meta = load_checkpoint(run / "last.pt")
    assert meta["epoch"] == 2 and model.num_classes == 8 and model.info.name == ARCH
    _, best_meta = load_checkpoint(run / "best.pt")
    assert best_meta["epoch"] == summary["best_epoch"]
    assert ("epochs", 2, 2) in summary["stages"]
    batches = [s for s in summary["stages"] if s[0] == "batches"]
    assert batches[-1][1] == batches[-1][2] == len(summary["batch_losses"]) // 2


def test_resume_continues_at_the_next_epoch(
    two_epochs: tuple[Path, dict], tmp_path: Path, tiny_market: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_epochs[0], run)
    summary = train(config(tiny_market, run, epochs=3, resume=True, eval_every=0))
    assert summary["start_epoch"] == 3
    assert [r["epoch"] for r in log_rows(run)] == ["1", "2", "3"]
    _, meta = load_checkpoint(run / "last.pt", for_training=True)
    assert meta["epoch"] == 3 and meta["optimizer"]["state"]  # Adam moments came along
    assert json.loads((run / "config.json").read_text())["resumed_from_epoch"] == 2
    with pytest.raises(ReidTraceError, match="already finished epoch 3"):
        train(config(tiny_market, run, epochs=3, resume=True))


def test_center_loss_and_capped_epochs_train_and_resume(tiny_market: Path, tmp_path: Path) -> None:
    kw = dict(epochs=1, eval_every=0, center_loss_weight=5e-4, max_images_per_epoch=40)
    first = train(config(tiny_market, tmp_path / "r", **kw))
    assert len(first["batch_losses"]) == 2  # 40 images = 2 whole batches of 16
    _, meta = load_checkpoint(tmp_path / "r" / "last.pt", for_training=True)
    centers = meta["extra"]["center"]["centers"]
    assert centers.shape == (8, 512)
    again = train(config(tiny_market, tmp_path / "r", **{**kw, "epochs": 2}, resume=True))
    assert again["start_epoch"] == 2 and len(again["batch_losses"]) == 2
    assert [r["epoch"] for r in log_rows(tmp_path / "r")] == ["1", "2"]


def test_run_folder_mistakes_are_input_errors(
    two_epochs: tuple[Path, dict], tmp_path: Path, tiny_market: Path
) -> None:
    with pytest.raises(ReidTraceError, match="already holds a training run"):
        train(config(tiny_market, two_epochs[0]))
    with pytest.raises(ReidTraceError, match="no checkpoint"):
        train(config(tiny_market, tmp_path / "new", resume=True))
    run = tmp_path / "run"
    shutil.copytree(two_epochs[0], run)
    with pytest.raises(ReidTraceError, match="is a run of 'osnet_x0_25_128x64'"):
        train(TrainConfig(data=tiny_market, arch="mobilenetv2_x1_0", out=run, resume=True))
    with pytest.raises(ReidTraceError, match="needs 16"):
        train(config(tiny_market, tmp_path / "big", batch_size=64))
    with pytest.raises(ReidTraceError, match="does not exist"):
        train(config(tmp_path / "nothing", tmp_path / "r"))
    with pytest.raises(ReidTraceError, match="multiple of num_instances"):
        train(config(tiny_market, tmp_path / "r", batch_size=18))


def test_extract_features_reads_files_in_order(tiny_market: Path) -> None:
    paths = sorted((tiny_market / "query").iterdir())[:5]
    model = create_model(ARCH).eval()
    feats = extract_features(model, paths, batch_size=2)
    assert feats.shape == (5, 512) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    one = extract_features(model, paths[3:4], batch_size=64)
    np.testing.assert_allclose(one[0], feats[3], atol=1e-5)
    flipped = extract_features(model, paths, batch_size=4, flip=True)
    assert flipped.shape == feats.shape and not np.allclose(flipped, feats)
    with pytest.raises(ReidTraceError, match="cannot read image"):
        extract_features(model, [paths[0].parent / "missing.jpg"])


def test_schedule_warms_up_then_decays() -> None:
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cos = LRSchedule(3.5e-4, epochs=120, warmup=10, kind="cosine")
    assert cos.set(opt, 0) == pytest.approx(3.5e-5) == opt.param_groups[0]["lr"]
    assert cos.set(opt, 5) == pytest.approx(3.5e-4 * 0.55)
    assert cos.set(opt, 10) == pytest.approx(3.5e-4)
    assert cos.set(opt, 120) == pytest.approx(3.5e-6)
    step = LRSchedule(3.5e-4, epochs=120, warmup=10, kind="step")
    assert [step.factor(e) for e in (20, 40, 69, 70)] == pytest.approx([1, 0.1, 0.1, 0.01])
    assert TrainConfig(data=".", arch=ARCH, out=".", epochs=12).warmup_epochs == 1.0


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return exc.value.code or 0, out, err


def test_cli_unknown_arch_is_one_line(tiny_market: Path, tmp_path: Path, capsys) -> None:
    argv = ["train", "--data", str(tiny_market), "--arch", "nope", "--out", str(tmp_path / "r")]
    code, _, err = run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: unknown model 'nope'") and "osnet_x0_25" in lines[0]
    code, out, _ = run_cli([*argv, "--json"], capsys)
    assert code == 2 and "unknown model" in json.loads(out)["error"]


def test_cli_resume_without_checkpoint_and_bad_data(tmp_path: Path, capsys) -> None:
    argv = ["train", "--data", str(tmp_path), "--arch", ARCH, "--out", str(tmp_path / "r")]
    code, _, err = run_cli([*argv, "--resume"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no checkpoint" in err
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "lacks bounding_box_train" in err


def test_cli_models_lists_the_registry(capsys) -> None:
    code, out, _ = run_cli(["models", "128x64", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and {r["name"] for r in rows} >= {ARCH, "mobilenetv2_x1_0_128x64"}
    assert all(r["input_size"] == [128, 64] and r["params_m"] > 0 for r in rows)


def test_stop_after_ends_early_on_the_long_schedule(tiny_market: Path, tmp_path: Path) -> None:
    kw = dict(epochs=4, eval_every=0, max_images_per_epoch=32)
    train(config(tiny_market, tmp_path / "boxed", stop_after=1, **kw))
    rows = log_rows(tmp_path / "boxed")
    assert [r["epoch"] for r in rows] == ["1"]
    # the learning rate follows the 4-epoch schedule (near its peak), not a 1-epoch one
    sched = LRSchedule(3.5e-4, 4, TrainConfig(data=".", arch=ARCH, out=".", epochs=4).warmup_epochs)
    lr_last_batch = sched.base_lr * sched.factor(0.5)  # 2 batches: the last starts at 0.5
    assert float(rows[0]["lr"]) == pytest.approx(lr_last_batch, rel=1e-2)
    assert lr_last_batch > 1.5 * 3.5e-4 * LRSchedule(3.5e-4, 1, 1 / 12).factor(0.5)
    again = train(config(tiny_market, tmp_path / "boxed", resume=True, **kw))
    assert again["start_epoch"] == 2
    assert [r["epoch"] for r in log_rows(tmp_path / "boxed")] == ["1", "2", "3", "4"]
    with pytest.raises(ReidTraceError, match="stop_after"):
        config(tiny_market, tmp_path / "x", epochs=2, stop_after=3).validate()


def test_fine_tuning_starts_from_an_onnx_export(tiny_market: Path, tmp_path: Path) -> None:
    """``--weights X.onnx``: the export is unfolded, its BatchNorms re-fitted, then trained."""
    from reid.models.export import export_onnx

    arch = "mobilenetv2_x1_0_128x64"
    source = create_model(arch).eval()
    exported = export_onnx(source, tmp_path / "src.onnx", flip=True)
    run = tmp_path / "ft"
    base = dict(batch_size=16, num_instances=4, workers=0, threads=1, epochs=1, eval_every=0)
    summary = train(
        TrainConfig(
            data=tiny_market, arch=arch, out=run, weights=exported, max_images_per_epoch=32, **base
        )
    )
    assert np.all(np.isfinite(summary["batch_losses"]))
    report = json.loads((run / "config.json").read_text())["weights"]
    assert "imported" in report and "re-estimated" in report
    with pytest.raises(ReidTraceError, match="not 'osnet_x0_25_128x64'"):
        train(config(tiny_market, tmp_path / "wrong", epochs=1, eval_every=0, weights=exported))
