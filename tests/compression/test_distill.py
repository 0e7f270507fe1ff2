"""Distillation while fine-tuning a pruned student: the losses, the gradients, a run, resume."""

from __future__ import annotations

import copy
import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from compression.distill import (  # noqa: E402
    DistillConfig,
    Distiller,
    default_feature_layers,
    distill_finetune,
    feature_loss,
    logit_loss,
)
from compression.prune import find_groups, keep_for_ratio, prune_model  # noqa: E402
from reid.errors import ReidTraceError  # noqa: E402
from reid.models import create_model, load_checkpoint  # noqa: E402
from reid.models.export import export_checkpoint  # noqa: E402
from reid.models.pruned import pruned_channels  # noqa: E402

SIZE = (64, 32)
ARCH = "mobilenetv2_x1_0_128x64"
PRUNED_LAYER = "backbone.conv3.0.conv1"  # a block-internal (pruned) width: needs an adapter
FULL_LAYER = "backbone.conv4"  # a block output (residual-tied, kept): no adapter


def _small(model):
    model.info = replace(model.info, input_size=SIZE)
    return model


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return _small(create_model(ARCH)).eval()


@pytest.fixture(scope="module")
def pruned(teacher):
    keep = {g.name: keep_for_ratio(g.channels, 0.5) for g in find_groups(teacher, SIZE)}
    return _small(prune_model(teacher, keep, input_size=SIZE))


@pytest.fixture()
def student(pruned):
    return copy.deepcopy(pruned)  # runs train their student in place


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 identities x 3 cameras x 8 crops (8 training identities)."""
    from reid.synth.crops import CropsConfig, generate_crops

    out = tmp_path_factory.mktemp("crops")
    generate_crops(
        out, CropsConfig(seed=0, cameras=3, identities=16, images_per_camera=8), workers=1
    )
    return out / "market"


def _batch(n: int = 8) -> tuple:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, *SIZE, generator=gen), torch.arange(n) // 2


def _cfg(**kw) -> DistillConfig:
    base = dict(batch_size=16, num_instances=4, workers=0, device="cpu", head_steps=50)
    return DistillConfig(**{**base, **kw})


def test_logit_and_feature_losses_vanish_only_on_agreement() -> None:
    x = torch.randn(6, 10)
    assert float(logit_loss(x, x, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(logit_loss(x, torch.randn(6, 10), 4.0)) > 1e-3
    m = torch.randn(4, 8, 5, 3)
    assert float(feature_loss(m, 3.0 * m)) == pytest.approx(0.0, abs=1e-6)  # scale-free
    assert float(feature_loss(m, torch.randn(4, 8, 5, 3))) > 0.1
    with pytest.raises(ValueError):
        feature_loss(m, torch.randn(4, 9, 5, 3))


def test_each_term_is_zero_for_the_teacher_itself_and_positive_for_the_student(
    teacher, student
) -> None:
    x, y = _batch()
    cfg = _cfg(logit_weight=0.0)
    layers = (PRUNED_LAYER, FULL_LAYER)
    same = Distiller(copy.deepcopy(teacher).eval(), teacher, cfg, 4, layers=layers, example=x[:1])
    _, parts = same(x, y)
    for term in ("feature", "embed", "relational"):
        assert float(parts[term]) == pytest.approx(0.0, abs=1e-5), term
    assert all(type(a).__name__ == "Identity" for a in same.adapters.values())
    pruned = Distiller(student.eval(), teacher, cfg, 4, layers=layers, example=x[:1])
    _, parts = pruned(x, y)
    for term in ("feature", "embed", "relational"):
        assert float(parts[term]) > 1e-4, term


def test_gradients_reach_student_and_adapters_never_the_teacher(teacher, student) -> None:
    x, y = _batch()
    head = torch.nn.Linear(teacher.embed_dim, 4, bias=False).requires_grad_(False)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    d = Distiller(
        student.train(), teacher, _cfg(), 4, layers=(PRUNED_LAYER, FULL_LAYER),
        teacher_head=head, example=x[:1],
    )  # fmt: skip
    adapter = d.adapters[PRUNED_LAYER.replace(".", "__")]
    assert isinstance(adapter, torch.nn.Conv2d) and adapter.in_channels < adapter.out_channels
    total, parts = d(x, y)
    assert set(parts) >= {"ce", "triplet", "logit", "feature", "embed", "relational"}
    total.backward()
    assert adapter.weight.grad is not None and adapter.weight.grad.abs().sum() > 0
    grads = [p.grad for p in student.backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in teacher.parameters())
    assert head.weight.grad is None
    assert teacher.training is False
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())


def test_default_layers_are_mobilenet_stage_outputs(teacher) -> None:
    assert default_feature_layers(teacher) == ("backbone.conv3", "backbone.conv5", "backbone.conv7")


def test_short_run_lowers_the_loss_and_writes_a_checkpoint_that_exports(
    teacher, student, market: Path, tmp_path: Path
) -> None:
    stages: list[tuple] = []
    cfg = _cfg(iters=16, checkpoint_every=8, lr=5e-4, feature_layers=(PRUNED_LAYER, FULL_LAYER))
    summary = distill_finetune(
        student, teacher, market, tmp_path / "run", cfg, lambda *a: stages.append(a)
    )
    losses = summary["batch_losses"]
    assert summary["steps"] == 16 and summary["stopped"] == "done" and all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    assert stages[-1] == ("fine-tune", 16, 16)
    with (tmp_path / "run" / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["8", "16"]
    assert all(float(rows[0][k]) > 0 for k in ("logit", "feature", "embed", "relational"))
    model, meta = load_checkpoint(tmp_path / "run" / "last.pt")
    assert meta["extra"]["step"] == 16 and "teacher_head" in meta["extra"]
    assert pruned_channels(model, create_model(ARCH))  # still the narrow network
    onnx = export_checkpoint(tmp_path / "run" / "last.pt", tmp_path / "student.onnx")
    assert onnx.is_file()


def test_no_teacher_is_plain_fine_tuning_and_resume_continues(
    student, market: Path, tmp_path: Path
) -> None:
    off = dict(logit_weight=0.0, feature_weight=0.0, embed_weight=0.0, relational_weight=0.0)
    out = tmp_path / "run"
    first = distill_finetune(student, None, market, out, _cfg(iters=4, checkpoint_every=4, **off))
    assert first["steps"] == 4
    with pytest.raises(ReidTraceError, match="already holds"):
        distill_finetune(student, None, market, out, _cfg(iters=4, **off))
    again = distill_finetune(
        student, None, market, out, _cfg(iters=7, checkpoint_every=4, resume=True, **off)
    )
    assert (again["start_step"], again["steps"]) == (4, 7)
    with (out / "log.csv").open(newline="") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["4", "7"]
    assert load_checkpoint(out / "last.pt")[1]["extra"]["step"] == 7


def test_bad_inputs_fail_with_one_line(teacher, student, market: Path, tmp_path: Path) -> None:
    other = copy.deepcopy(teacher)
    other.info = replace(other.info, input_size=(128, 64))
    with pytest.raises(ReidTraceError, match="input size"):
        distill_finetune(student, other, market, tmp_path / "a", _cfg(iters=1))
    with pytest.raises(ReidTraceError, match="no teacher"):
        distill_finetune(student, None, market, tmp_path / "b", _cfg(iters=1))
    empty = tmp_path / "empty"
    (empty / "bounding_box_train").mkdir(parents=True)
    (empty / "bounding_box_test").mkdir()
    (empty / "query").mkdir()
    with pytest.raises(ReidTraceError):
        distill_finetune(student, teacher, empty, tmp_path / "c", _cfg(iters=1))
    with pytest.raises(ReidTraceError, match="feature layer"):
        distill_finetune(
            student, teacher, market, tmp_path / "d", _cfg(iters=1, feature_layers=("nope",))
        )
    with pytest.raises(ReidTraceError, match="logit_weight"):
        _cfg(logit_weight=-1.0).validate()
    with pytest.raises(ReidTraceError, match="resume"):
        distill_finetune(student, teacher, market, tmp_path / "e", _cfg(resume=True))
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_max_minutes_stops_early_with_a_checkpoint(student, market: Path, tmp_path: Path) -> None:
    off = dict(logit_weight=0.0, feature_weight=0.0, embed_weight=0.0, relational_weight=0.0)
    cfg = _cfg(iters=50, max_minutes=1e-6, **off)
    summary = distill_finetune(student, None, market, tmp_path / "run", cfg)
    assert (summary["steps"], summary["stopped"]) == (1, "max_minutes")
    assert load_checkpoint(tmp_path / "run" / "last.pt")[1]["extra"]["step"] == 1


def test_teacher_flip_targets_the_flip_averaged_teacher(teacher) -> None:
    """The teacher itself as student: nothing to learn without the flip, something with it
    (its one pass differs from its own flip average); an image symmetric under the flip has
    nothing to learn either way. Feature maps of a mirror image do not line up: refused."""
    x, y = _batch()
    cfg = _cfg(logit_weight=0.0, feature_weight=0.0)
    flip = replace(cfg, teacher_flip=True)
    _, plain = Distiller(copy.deepcopy(teacher).eval(), teacher, cfg, 4)(x, y)
    _, flipped = Distiller(copy.deepcopy(teacher).eval(), teacher, flip, 4)(x, y)
    assert float(plain["embed"]) == pytest.approx(0.0, abs=1e-5)
    assert float(flipped["embed"]) > 1e-4 and float(flipped["relational"]) > 0.0
    mirror = (x + x.flip(3)) / 2  # left-right symmetric images
    _, sym = Distiller(copy.deepcopy(teacher).eval(), teacher, flip, 4)(mirror, y)
    assert float(sym["embed"]) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ReidTraceError, match="teacher_flip"):
        _cfg(teacher_flip=True).validate()
