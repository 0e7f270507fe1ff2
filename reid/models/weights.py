"""Loading weights into a ``ReIDNet``: our checkpoints and torchreid model-zoo files.

torchreid publishes its zoo as raw state dicts or as ``{"state_dict": ..., "epoch": ...}``,
often saved from ``nn.DataParallel`` (``module.`` prefixes) and always with an identity
classifier sized for the training set. A family's ``filter_state_dict`` turns such a dict into
``ReIDNet`` keys (``backbone.`` prefix, no classifier) and says what it dropped; a checkpoint of
another architecture is refused with both names, rather than half-loaded as torchreid's own
``load_pretrained_weights`` would (it silently skips mismatched layers).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from reid.errors import ReidTraceError
from reid.models import registry
from reid.models.net import ReIDNet

__all__ = ["CHECKPOINT_FORMAT", "LoadReport", "load_weights", "standard_filter"]

CHECKPOINT_FORMAT = "reidtrace-checkpoint"
"""Value of the ``format`` field that marks our own checkpoints (see ``checkpoint.py``)."""

_HEAD_KEYS = ("backbone.", "bnneck.", "classifier.")


@dataclass
class LoadReport:
    """What :func:`load_weights` did, for logs and the CLI."""

    path: str
    source: str  # "reidtrace" (our checkpoint) or "torchreid" (a zoo file / raw state dict)
    arch: str | None  # the checkpoint's own arch field, when it has one
    loaded: int  # tensors copied into the model
    dropped: list[str] = field(default_factory=list)  # checkpoint keys not used (on purpose)
    missing: list[str] = field(default_factory=list)  # model keys left at their init

    def summary(self) -> str:
        """One line: where from, how much, what was left out."""
        return (
            f"loaded {self.loaded} tensors from {self.source} file {self.path!r}; "
            f"dropped {_short(self.dropped)}; left at init {_short(self.missing)}"
        )


def _short(keys: list[str], n: int = 4) -> str:
    if not keys:
        return "nothing"
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def read_torch_file(path: str | Path, what: str = "weights file") -> Any:
    """``torch.load`` on CPU with ``weights_only=True``; missing or unreadable -> ReidTraceError.

    ``weights_only`` refuses pickled code: a checkpoint is user input and must not run anything.
    """
    p = Path(path)
    if not p.exists():
        raise ReidTraceError(
            f"{what} {str(p)!r} does not exist",
            hint="check the path; `reidtrace train` writes RUN/last.pt and RUN/best.pt",
        )
    if not p.is_file():
        raise ReidTraceError(f"{what} {str(p)!r} is not a file", hint="pass RUN/best.pt, say")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types (zip, pickle, EOF) for bad files
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "WeightsUnpickler" in ln), lines[0] if lines else "")
        first = why.split(". Please use")[0][:200] or type(err).__name__
        raise ReidTraceError(
            f"cannot read {what} {str(p)!r} as a PyTorch checkpoint: {first}",
            hint="the file may be truncated, not a .pt/.pth file, or hold pickled objects "
            "(refused for safety); re-download or re-save it as a plain state dict",
        ) from err


def is_our_checkpoint(obj: Any) -> bool:
    """True for a dict written by :func:`reid.models.checkpoint.save_checkpoint`."""
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def extract_state_dict(obj: Any, path: str | Path) -> dict[str, Tensor]:
    """The tensor dict inside a torchreid-style file: ``state_dict``/``model`` entry, or itself."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if isinstance(obj, dict) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj)
    raise ReidTraceError(
        f"{str(path)!r} holds no state dict (found {type(obj).__name__} "
        f"with keys {sorted(obj)[:6] if isinstance(obj, dict) else '-'})",
        hint="pass a checkpoint from `reidtrace train` or a torchreid model-zoo .pth file",
    )


def standard_filter(
    state: dict[str, Tensor], *, drop_keys: Iterable[str] = ()
) -> tuple[dict[str, Tensor], list[str]]:
    """torchreid keys -> ``ReIDNet`` keys; returns ``(state, dropped)``.

    Strips ``module.`` (``nn.DataParallel``), drops the identity classifier (sized for someone
    else's training set) and any ``drop_keys``, and adds the ``backbone.`` prefix unless the dict
    already uses ``ReIDNet`` names (a raw ``ReIDNet.state_dict()``).
    """
    drop = set(drop_keys)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    ours = any(k.startswith(_HEAD_KEYS[:2]) for k in state)
    out: dict[str, Tensor] = {}
    dropped: list[str] = []
    for k, v in state.items():
        if k.startswith("classifier.") or k in drop:
            dropped.append(k)
            continue
        out[k if ours else "backbone." + k] = v
    return out, dropped


@functools.cache
def _backbone_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """``backbone.*`` key -> shape of a registered model, built on the meta device (no memory)."""
    with torch.device("meta"):  # the model create_model(name) builds, without importing it
        model = ReIDNet(registry.build_backbone(name), registry.model_info(name))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("backbone.")}


def guess_arch(state: dict[str, Tensor]) -> str | None:
    """The registered network whose backbone has exactly these keys and shapes, if any."""
    have = {
        k: tuple(v.shape)
        for k, v in state.items()
        if k.startswith("backbone.") and not k.endswith("num_batches_tracked")
    }
    seen: set[str] = set()
    for name in registry.list_models():
        network = registry.model_info(name).network
        if network in seen:
            continue
        seen.add(network)
        shapes = _backbone_shapes(name)
        want = {k: s for k, s in shapes.items() if not k.endswith("num_batches_tracked")}
        if want == have:
            return network
    return None


def load_weights(model: ReIDNet, path: str | Path) -> LoadReport:
    """Load our checkpoint or a torchreid model-zoo file into ``model``; say what was dropped.

    Every backbone tensor must be present with the right shape; the BNNeck and classifier may
    be missing (torchreid files have none: they stay at their init) and a classifier of another
    size is dropped (it is sized by the training set). Anything else means another
    architecture, and raises ReidTraceError naming both.
    """
    obj = read_torch_file(path)
    arch: str | None = None
    if is_our_checkpoint(obj):
        arch = str(obj.get("arch"))
        info = obj.get("info") or {}
        if arch != model.info.name and info.get("network") != model.info.network:
            raise ReidTraceError(
                f"checkpoint {str(path)!r} holds a {arch!r} model, not {model.info.name!r}",
                hint=f"use --arch {arch}, or a checkpoint trained as {model.info.name!r}",
            )
        state, dropped, source = dict(obj["state_dict"]), [], "reidtrace"
    else:
        fn = registry.filter_fn(model.info.name) or standard_filter
        state, dropped = fn(extract_state_dict(obj, path))
        source = "torchreid"

    target = model.state_dict()
    for k in [k for k in state if k.startswith("classifier.") and k in target]:
        if state[k].shape != target[k].shape:  # another training set's identities
            dropped.append(k)
            del state[k]
    unknown = [k for k in state if k not in target]
    wrong = [k for k in state if k in target and state[k].shape != target[k].shape]
    absent = [
        k
        for k in target
        if k.startswith("backbone.") and k not in state and not k.endswith("num_batches_tracked")
    ]
    if unknown or wrong or absent:
        other = arch or guess_arch(state)
        what = f"a {other!r} model" if other else "weights of another architecture"
        example = (wrong or unknown or absent)[0]
        raise ReidTraceError(
            f"{str(path)!r} holds {what}, not {model.info.name!r} ({len(wrong)} tensors of "
            f"another shape, {len(unknown)} unknown, {len(absent)} missing; e.g. {example!r})",
            hint=f"use --arch {other}" if other else "pass weights trained for this --arch",
        )
    model.load_state_dict(state, strict=False)
    missing = [k for k in target if k not in state]
    return LoadReport(str(path), source, arch, len(state), dropped, missing)
