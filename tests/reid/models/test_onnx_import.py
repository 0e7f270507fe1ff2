"""Our ONNX exports back into PyTorch: same function, trainable BatchNorms, clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from reid.errors import ReidTraceError
from reid.models import create_model, load_checkpoint
from reid.models.export import export_onnx
from reid.models.onnx_import import import_onnx, onnx_state_dict, recalibrate_batchnorm

ARCH = "mobilenetv2_x1_0_128x64"


def _randomise_batchnorms(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial statistics and affines, so folding them into the convs changes the weights."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            if m.bias.requires_grad:
                m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    model = create_model(ARCH)
    _randomise_batchnorms(model)
    model.eval()
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    export_onnx(model, path, flip=True)
    return model, path


def _ort(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x.numpy()})[0]


def test_import_reproduces_the_exported_network(exported) -> None:
    original, path = exported
    model, meta = import_onnx(path)
    assert meta["arch"] == ARCH and meta["source"] == "onnx"
    x = torch.rand(4, 3, 128, 64)
    original.eval()  # export leaves the model as it found it; be sure
    with torch.inference_mode():
        want = original(x)
        got = model(x)
    # the imported network without flip equals the original without flip
    assert torch.allclose(got, want, atol=1e-4)
    # and with flip it equals what ONNX Runtime computes from the file
    with torch.inference_mode():
        both = model(torch.cat([x, x.flip(3)]))
        flipped = torch.nn.functional.normalize(both[:4] + both[4:], dim=1).numpy()
    assert np.allclose(flipped, _ort(path, x), atol=1e-4)


@pytest.mark.parametrize("word", ["default", "source"])
def test_load_checkpoint_takes_the_words_for_the_fp32_source(word: str) -> None:
    """``default`` still means the shipped weights in PyTorch: the FP32 source model, not the
    INT8 default embedder (which cannot be rebuilt); ``source`` says the same."""
    from reid.embed import SOURCE_MODEL, source_model

    model, meta = load_checkpoint(word)
    assert meta["arch"] == "mobilenetv2_x1_0" and not model.training
    assert Path(meta["onnx"]) == SOURCE_MODEL
    x = torch.rand(2, 3, 256, 128)
    with torch.inference_mode():
        both = model(torch.cat([x, x.flip(3)]))
    got = torch.nn.functional.normalize(both[:2] + both[2:], dim=1).numpy()
    assert np.min(np.sum(got * _ort(source_model(), x), axis=1)) > 0.9999


def test_quantized_files_are_refused_by_name(exported, tmp_path: Path) -> None:
    _, path = exported
    proto = onnx.load(str(path))
    proto.metadata_props.add(key="precision", value="int8")
    marked = tmp_path / "int8.onnx"
    onnx.save(proto, str(marked))
    with pytest.raises(ReidTraceError, match="quantized") as err:
        import_onnx(marked)
    assert "source_fp32.onnx" in err.value.hint


def test_the_bundled_int8_default_is_refused_pointing_at_the_source() -> None:
    from reid.embed import default_model

    with pytest.raises(ReidTraceError, match="quantized") as err:
        load_checkpoint(default_model())
    assert "`source`" in err.value.hint


def test_recalibration_keeps_the_function_and_fits_batch_statistics(exported) -> None:
    _, path = exported
    model, _ = import_onnx(path)
    x = torch.rand(8, 3, 128, 64)
    calib = torch.rand(64, 3, 128, 64) * 2 - 1
    with torch.inference_mode():
        before = model(x)
    layers = recalibrate_batchnorm(model, [calib[:32], calib[32:]])
    assert layers > 40
    with torch.inference_mode():
        after = model(x)
        # train-mode BN normalises with the batch's statistics: on the calibration batch these
        # are the new running statistics, so the pre-BNNeck feature hardly moves
        model.eval()
        want = model.global_feature(calib)
        model.train()
        got = model.global_feature(calib)
        model.eval()
    assert torch.allclose(before, after, atol=1e-4)
    rel = (got - want).norm() / want.norm()
    assert rel < 0.02
    # without recalibration the imported (identity) BatchNorms would change the function a lot
    fresh, _ = import_onnx(path)
    with torch.inference_mode():
        fresh.train()
        moved = fresh.global_feature(calib)
    assert (moved - want).norm() / want.norm() > 0.2


def test_an_export_at_another_input_size_imports(tmp_path: Path) -> None:
    model = create_model(ARCH).eval()
    path = export_onnx(model, tmp_path / "small.onnx", input_size=(96, 48))
    rebuilt, _ = import_onnx(path)  # verified at the file's 96x48, not the registry's 128x64
    x = torch.rand(2, 3, 96, 48)
    with torch.inference_mode():
        assert torch.allclose(rebuilt(x), model(x), atol=1e-4)


def test_state_dict_covers_the_backbone(exported) -> None:
    _, path = exported
    arch, state = onnx_state_dict(path)
    target = create_model(arch).state_dict()
    backbone = [k for k in target if k.startswith("backbone.")]
    assert set(backbone) <= set(state)
    assert all(state[k].shape == target[k].shape for k in state)


def test_foreign_files_are_refused(exported, tmp_path: Path) -> None:
    _, path = exported
    with pytest.raises(ReidTraceError, match="does not exist"):
        import_onnx(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ReidTraceError, match="not a readable ONNX model"):
        import_onnx(junk)
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "arch":
            prop.value = "osnet_x0_25"
    other = tmp_path / "osnet.onnx"
    onnx.save(proto, str(other))
    with pytest.raises(ReidTraceError, match="cannot be imported back"):
        import_onnx(other)
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ReidTraceError, match="no 'arch' metadata"):
        import_onnx(bare)
