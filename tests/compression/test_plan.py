"""Budget search and the plan file: budget respected, impossible budgets refused, JSON checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from compression.plan import CompressionPlan  # noqa: E402
from compression.prune import count_macs, find_groups, prune_model  # noqa: E402
from compression.sensitivity import (  # noqa: E402
    cosine_proxy,
    measure_sensitivity,
    parse_budget,
    search_plan,
)
from reid.errors import ReidTraceError  # noqa: E402
from reid.models import create_model  # noqa: E402

SIZE = (64, 32)
RATIOS = (0.5, 0.75)


@pytest.fixture(scope="module")
def mnv2():
    torch.manual_seed(0)
    return create_model("mobilenetv2_x1_0").eval()


@pytest.fixture(scope="module")
def groups(mnv2):
    return find_groups(mnv2, SIZE)


def _flat_sensitivity(groups, cheap: str | None = None) -> dict:
    """Every group equally sensitive, except ``cheap`` (free to prune)."""
    return {g.name: {f"{r:g}": 0.0 if g.name == cheap else r for r in RATIOS} for g in groups}


def _search(mnv2, budget, sensitivity, **kw):
    return search_plan(
        mnv2,
        budget,
        score=lambda m: 0.0,
        ratios=RATIOS,
        input_size=SIZE,
        sensitivity=sensitivity,
        **kw,
    )


@pytest.mark.parametrize("budget", ["0.5x", "0.35x", "6M"])
def test_search_respects_macs_budget(mnv2, groups, budget) -> None:
    base = count_macs(mnv2, SIZE)
    plan = _search(mnv2, budget, _flat_sensitivity(groups))
    _, target = parse_budget(budget, base)
    assert plan.base_macs == base
    assert plan.macs <= target
    assert plan.macs > 0.8 * target  # and does not prune far more than asked
    pruned = prune_model(mnv2, plan.keep(), input_size=SIZE)
    assert count_macs(pruned, SIZE) == plan.macs
    assert sum(r.macs for r in plan.layers) == plan.macs
    assert all(r.precision == "fp32" for r in plan.layers)


def test_search_prunes_the_insensitive_group_most(mnv2, groups) -> None:
    cheap = "backbone.conv7.0.conv1.conv"
    plan = _search(mnv2, "0.8x", _flat_sensitivity(groups, cheap=cheap))
    ratios = {g.name: g.ratio for g in plan.groups}
    assert ratios[cheap] == max(ratios.values()) >= 0.7


@pytest.mark.parametrize("budget", ["0.01x", "10k"])
def test_impossible_budget_is_one_line_error(mnv2, groups, budget) -> None:
    with pytest.raises(ReidTraceError, match="below what pruning can reach") as err:
        _search(mnv2, budget, None)  # refused before any sensitivity is measured
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["fast", "-3x", "2x", "0", "12 fps"])
def test_unreadable_budget_is_one_line_error(text) -> None:
    with pytest.raises(ReidTraceError) as err:
        parse_budget(text, 1000)
    assert "\n" not in str(err.value)


def test_parse_budget_units() -> None:
    assert parse_budget("0.25x", 400) == ("macs", 100.0)
    assert parse_budget("50M", 1) == ("macs", 50e6)
    assert parse_budget("1.5G", 1) == ("macs", 1.5e9)
    assert parse_budget("8ms", 1) == ("latency", 8.0)


def test_latency_budget_measures_and_refuses_impossible(mnv2, groups) -> None:
    with pytest.raises(ReidTraceError, match="below what pruning can reach"):
        _search(mnv2, "0.0001ms", _flat_sensitivity(groups))
    plan = _search(mnv2, "1000ms", _flat_sensitivity(groups))  # already within: nothing pruned
    assert plan.macs == plan.base_macs
    assert plan.base_latency_ms > 0
    assert all(set(g.latency_ms) == {"0.5", "0.75"} for g in plan.groups)
    assert all(v >= 0 for g in plan.groups for v in g.latency_ms.values())


def test_cosine_sensitivity_is_measured_per_group(mnv2, groups) -> None:
    images = torch.randn(8, 3, *SIZE, generator=torch.Generator().manual_seed(0))
    score = cosine_proxy(mnv2, images)
    assert score(mnv2) == pytest.approx(1.0, abs=1e-5)
    two = [g for g in groups if g.name.startswith("backbone.conv5.0")][:2]
    sens = measure_sensitivity(mnv2, score, groups=two, ratios=RATIOS, input_size=SIZE)
    for g in two:
        assert 0 < sens[g.name]["0.5"] < sens[g.name]["0.75"] <= 2


def test_plan_round_trip_and_validation(mnv2, groups, tmp_path: Path) -> None:
    plan = _search(mnv2, "0.5x", _flat_sensitivity(groups), criterion="thinet")
    path = plan.save(tmp_path / "plan.json")
    back = CompressionPlan.load(path)
    assert back == plan
    data = json.loads(path.read_text())
    bad_cases = {
        "keeps 999": lambda d: d["groups"][0].update(keep=999),
        "precision 'int4'": lambda d: d["layers"][0].update(precision="int4"),
        "criterion 'taylor'": lambda d: d.update(criterion="taylor"),
        "not a valid compression plan": lambda d: d.pop("base_macs"),
        "not a reidtrace compression plan": lambda d: d.update(format="other"),
    }
    for text, damage in bad_cases.items():
        d = json.loads(json.dumps(data))
        damage(d)
        (tmp_path / "bad.json").write_text(json.dumps(d))
        with pytest.raises(ReidTraceError, match=text) as err:
            CompressionPlan.load(tmp_path / "bad.json")
        assert "\n" not in str(err.value)
    (tmp_path / "cut.json").write_text(path.read_text()[:100])
    with pytest.raises(ReidTraceError, match="cannot read plan"):
        CompressionPlan.load(tmp_path / "cut.json")
    assert not list(tmp_path.glob(".plan.json.*"))  # no temporary left behind
