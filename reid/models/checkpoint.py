"""Our checkpoint file: enough to rebuild the model from the file alone, and to resume training.

A checkpoint is a dict saved with ``torch.save``::

    {"format": "reidtrace-checkpoint", "version": 1, "arch": registry name,
     "num_classes": classifier size, "state_dict": ReIDNet weights (CPU), "epoch": last finished,
     "optimizer": state or None, "scheduler": state or None, "info": ModelInfo as plain data,
     "torch": version, "extra": {...} (training's own bookkeeping: best mAP, config, ...;
     ``"untrained": True`` marks weights that were never trained, e.g. a random-init network
     saved to time or compress an architecture: ``reidtrace compress`` then reports its mAP
     drop as not meaningful),
     "channels": {conv name: out channels} (only for channel-pruned models, see pruned.py)}

Only plain data and tensors go in, so it loads with ``weights_only=True`` (no pickled code).
Writes are atomic (temporary file in the same folder + rename): a run killed while saving
leaves the previous ``last.pt`` intact, which is what ``--resume`` reads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from reid.errors import ReidTraceError
from reid.models.factory import create_model
from reid.models.net import ReIDNet
from reid.models.onnx_import import import_onnx, is_onnx_weights
from reid.models.pruned import pruned_channels, resize_to_state
from reid.models.registry import list_models
from reid.models.weights import CHECKPOINT_FORMAT, is_our_checkpoint, read_torch_file

__all__ = ["load_checkpoint", "save_checkpoint"]

VERSION = 1


def save_checkpoint(
    path: str | Path,
    model: ReIDNet,
    *,
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (and optionally optimizer/scheduler state) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": VERSION,
        "arch": model.info.name,
        "num_classes": model.num_classes,
        # contiguous CPU copies: a channels_last or CUDA model loads anywhere
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
        "epoch": int(epoch),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "info": model.info.to_dict(),
        "torch": str(torch.__version__),  # TorchVersion is not weights_only-safe
        "extra": dict(extra or {}),
    }
    with torch.device("meta"):  # shapes only: no memory, no time
        channels = pruned_channels(model, create_model(model.info.name))
    if channels:  # pruned: the widths to rebuild it at (absent otherwise, so older files match)
        payload["channels"] = channels
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, *, for_training: bool = False) -> tuple[ReIDNet, dict]:
    """Rebuild the model a checkpoint was saved from; returns ``(model, meta)``.

    ``meta`` is the file's dict without ``state_dict``; ``for_training=False`` also leaves out
    the optimizer and scheduler state (only resuming needs them) and returns the model in eval
    mode, ready to embed. Missing, corrupt or foreign files raise ReidTraceError.

    Our own ONNX exports (an ``.onnx`` path, or ``default`` for the bundled model) load too,
    through :func:`reid.models.onnx_import.import_onnx` (``meta["source"] == "onnx"``).
    """
    if is_onnx_weights(path):
        model, meta = import_onnx(path)
        model.train(for_training)
        return model, meta
    obj = read_torch_file(path, "checkpoint")
    if not is_our_checkpoint(obj):
        raise ReidTraceError(
            f"{str(path)!r} is not a reidtrace checkpoint (no format field)",
            hint="for torchreid model-zoo weights use create_model(NAME, weights=PATH)",
        )
    arch = obj.get("arch")
    if arch not in list_models():
        raise ReidTraceError(
            f"checkpoint {str(path)!r} is for model {arch!r}, which this version does not know",
            hint=f"known models: {', '.join(list_models())}",
        )
    try:
        model = create_model(arch, num_classes=int(obj["num_classes"]))
        if obj.get("channels"):
            resize_to_state(model, obj["state_dict"], dict(obj["channels"]))
        model.load_state_dict(obj["state_dict"], strict=True)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ReidTraceError(
            f"checkpoint {str(path)!r} does not match model {arch!r}: {first}",
            hint="the file is damaged or from an incompatible version; retrain or re-export",
        ) from err
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    if not for_training:
        meta.pop("optimizer", None)
        meta.pop("scheduler", None)
    model.train(for_training)
    return model, meta
