"""Named detector models: install checks the hash (or a test card), ``auto`` picks the best
installed one and fits its input to the camera. Installs go into a tmp folder, never a home."""

from __future__ import annotations

from pathlib import Path

import pytest

from reid.detect import NanoDetDetector, YoloxDetector, create_detector
from reid.detect.catalog import (
    CATALOG,
    best_installed,
    install_model,
    list_models,
    resolve_detector,
    sanity_check,
)
from reid.detect.nanodet import WEIGHTS
from reid.detect.onnx_graph import free_spatial_dims
from reid.errors import ReidTraceError


def test_without_installed_models_auto_is_the_bundled_nanodet(tmp_path: Path) -> None:
    for models_dir in (None, tmp_path / "models"):
        chosen = resolve_detector("auto", {}, models_dir, frame_hw=(360, 480))
        assert chosen.name == "nanodet" and chosen.options == {}
        assert chosen.note.startswith("detector: nanodet (auto")
        assert isinstance(create_detector(chosen.name, **chosen.options), NanoDetDetector)
    rows = {r["name"]: r for r in list_models(tmp_path)}
    assert rows["nanodet"]["installed"] and not rows["yolox-nano"]["installed"]
    assert best_installed(tmp_path).name == "nanodet"


def test_other_names_pass_through_and_a_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    chosen = resolve_detector("hog", {"upscale": 2}, tmp_path)
    assert (chosen.name, chosen.options) == ("hog", {"upscale": 2})
    with pytest.raises(ReidTraceError, match="not installed") as err:
        resolve_detector("yolox-nano", {}, tmp_path)
    assert "detectors install yolox-nano" in (err.value.hint or "")
    assert "0.1.1rc0" in (err.value.hint or "")


def test_install_refuses_a_wrong_hash_and_installs_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "yolox_nano.onnx"
    fake.write_bytes(b"not the model")
    with pytest.raises(ReidTraceError, match="sha256") as err:
        install_model("yolox-nano", fake, tmp_path / "models")
    assert "--force-hash" in (err.value.hint or "")
    assert not (tmp_path / "models" / "yolox_nano.onnx").exists()
    with pytest.raises(ReidTraceError, match="unknown detector model"):
        install_model("yolo-huge", fake, tmp_path / "models")
    with pytest.raises(ReidTraceError, match="bundled"):
        install_model("nanodet", fake, tmp_path / "models")
    with pytest.raises(ReidTraceError, match="not a file"):
        install_model("yolox-nano", tmp_path / "nope.onnx", tmp_path / "models")


def test_forced_hash_still_needs_a_model_that_finds_people(tmp_path: Path) -> None:
    # the bundled NanoDet is a valid ONNX detector, but not a YOLOX one
    with pytest.raises(ReidTraceError, match="not a usable yolox-nano"):
        install_model("yolox-nano", WEIGHTS["int8"], tmp_path / "models", force_hash=True)
    assert not (tmp_path / "models" / "yolox_nano.onnx").exists()


def test_the_test_card_tells_a_people_detector_from_a_broken_one() -> None:
    found, people = sanity_check(create_detector("nanodet"))
    assert people == 5 and found >= 3
    with pytest.raises(ReidTraceError, match="test card"):
        sanity_check(create_detector("nanodet", score_threshold=1.0))


def test_installed_yolox_becomes_auto_with_the_cameras_input_size(
    tmp_path: Path, yolox_nano: Path
) -> None:
    models = tmp_path / "models"
    out = install_model("yolox-nano", yolox_nano, models)
    assert out["hash_ok"] and out["test_card_found"] is None
    assert Path(out["path"]) == models / "yolox_nano.onnx"
    assert best_installed(models) is CATALOG["yolox-nano"]
    chosen = resolve_detector("auto", {}, models, frame_hw=(360, 480))
    assert chosen.name == "yolox" and chosen.options["input_size"] == (384, 480)
    assert "yolox-nano" in chosen.note and "384x480" in chosen.note
    det = create_detector(chosen.name, **chosen.options)
    assert isinstance(det, YoloxDetector) and det.input_hw == (384, 480)
    given = resolve_detector("auto", {"input_size": 416}, models, frame_hw=(480, 640))
    assert given.options["input_size"] == (416, 416)
    rows = {r["name"]: r for r in list_models(models)}
    assert rows["yolox-nano"]["hash_ok"] is True


def test_another_export_installs_with_force_hash_after_the_test_card(
    tmp_path: Path, yolox_nano: Path
) -> None:
    other = tmp_path / "other_export.onnx"  # same weights, other bytes (named input dims)
    other.write_bytes(free_spatial_dims(yolox_nano.read_bytes()))
    with pytest.raises(ReidTraceError, match="sha256"):
        install_model("yolox-nano", other, tmp_path / "models")
    out = install_model("yolox-nano", other, tmp_path / "models", force_hash=True)
    assert not out["hash_ok"] and out["test_card_found"] >= 3
    rows = {r["name"]: r for r in list_models(tmp_path / "models")}
    assert rows["yolox-nano"]["hash_ok"] is False
