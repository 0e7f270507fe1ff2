"""The per-layer compression plan: what the budget search chose, as a JSON file.

One :class:`CompressionPlan` records, for one model and input size, how many channels each
prunable group keeps (``groups``: the search's rows, with the sensitivity and latency numbers it
decided on) and every weight layer of the pruned network with its multiply-adds and the
precision it should run at (``layers``: ``"fp32"`` until the quantization stage sets ``"int8"``
where INT8 is faster on the target CPU). The file is the hand-over between stages: pruning
reads ``groups``, quantization reads and fills ``layers``, the report prints both.

Plain JSON (no pickles): it is read back from user-supplied paths, and every field is checked
on load, so a hand-edited or truncated file fails with one line naming the field.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reid.errors import ReidTraceError

__all__ = ["PLAN_FORMAT", "PRECISIONS", "CompressionPlan", "GroupRow", "LayerRow"]

PLAN_FORMAT = "reidtrace-compression-plan"
VERSION = 1
PRECISIONS = ("fp32", "int8")
CRITERIA = ("l1", "l2", "thinet")


@dataclass
class GroupRow:
    """One prunable channel group: the output channels of ``name`` and every layer tied to them.

    ``sensitivity`` maps a pruning ratio (as text, JSON keys are strings) to the proxy's drop
    when only this group is pruned that much; ``latency_ms`` maps it to the measured time saved.
    """

    name: str  # the conv whose output channels are pruned (module name in the ReIDNet)
    consumer: str  # the next layer, which reads those channels (ThiNet reconstructs its output)
    channels: int  # before pruning
    keep: int  # after pruning
    sensitivity: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Fraction of channels removed."""
        return 1.0 - self.keep / self.channels


@dataclass
class LayerRow:
    """One weight layer (conv or linear) of the pruned network, in forward order."""

    name: str
    kind: str  # "conv", "depthwise" or "linear"
    in_channels: int
    out_channels: int
    macs: int  # multiply-adds for one image at the plan's input size
    precision: str = "fp32"  # "int8" where the quantization stage measured it faster


@dataclass
class CompressionPlan:
    """Per-layer pruning and precision plan for one model (see the module docstring)."""

    arch: str
    input_size: tuple[int, int]
    criterion: str  # "l1", "l2" (magnitude) or "thinet" (next-layer reconstruction)
    budget: str  # as the user gave it: "0.25x", "50M", "12ms"
    proxy: str  # what sensitivity measured: "cosine" (feature cosine to the original) or "mAP"
    base_macs: int
    macs: int  # planned (counted on the pruned network once it exists)
    groups: list[GroupRow]
    layers: list[LayerRow] = field(default_factory=list)
    base_latency_ms: float | None = None
    latency_ms: float | None = None  # measured on the pruned network, when measured
    notes: dict[str, Any] = field(default_factory=dict)

    def keep(self) -> dict[str, int]:
        """``{group name: channels kept}``: what :func:`compression.prune.prune_model` takes."""
        return {g.name: g.keep for g in self.groups}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, with the format marker and version."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return {"format": PLAN_FORMAT, "version": VERSION, **d}

    def save(self, path: str | Path) -> Path:
        """Write the plan as JSON atomically (temporary file + rename): never half a plan."""
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_dict(), f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def from_dict(cls, d: Any, source: str = "plan") -> CompressionPlan:
        """Build and validate a plan from JSON data; any problem -> one-line ReidTraceError."""
        if not isinstance(d, dict) or d.get("format") != PLAN_FORMAT:
            raise ReidTraceError(
                f"{source} is not a reidtrace compression plan (no format {PLAN_FORMAT!r})",
                hint="pass a plan.json written by the budget search",
            )
        if d.get("version") != VERSION:
            raise ReidTraceError(
                f"{source} has plan version {d.get('version')!r}; this version reads {VERSION}",
                hint="run the budget search again with this version",
            )
        try:
            groups = [GroupRow(**g) for g in d["groups"]]
            layers = [LayerRow(**r) for r in d.get("layers", [])]
            plan = cls(
                arch=str(d["arch"]),
                input_size=(int(d["input_size"][0]), int(d["input_size"][1])),
                criterion=str(d["criterion"]),
                budget=str(d["budget"]),
                proxy=str(d["proxy"]),
                base_macs=int(d["base_macs"]),
                macs=int(d["macs"]),
                groups=groups,
                layers=layers,
                base_latency_ms=d.get("base_latency_ms"),
                latency_ms=d.get("latency_ms"),
                notes=dict(d.get("notes", {})),
            )
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ReidTraceError(
                f"{source} is not a valid compression plan: {type(err).__name__}: {err}",
                hint="the file is damaged or hand-edited; run the budget search again",
            ) from err
        plan.validate(source)
        return plan

    @classmethod
    def load(cls, path: str | Path) -> CompressionPlan:
        """Read a plan written by :meth:`save` (missing, unreadable, invalid -> ReidTraceError)."""
        p = Path(path)
        if not p.is_file():
            raise ReidTraceError(
                f"plan {str(p)!r} does not exist", hint="run the budget search to write one"
            )
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ReidTraceError(
                f"cannot read plan {str(p)!r} as JSON: {err}",
                hint="the file is damaged; run the budget search again",
            ) from err
        return cls.from_dict(data, source=f"plan {str(p)!r}")

    def validate(self, source: str = "plan") -> None:
        """Check every field's range and consistency; raise one-line ReidTraceError if wrong."""

        def bad(what: str) -> ReidTraceError:
            return ReidTraceError(
                f"{source}: {what}", hint="run the budget search again to write a valid plan"
            )

        if self.criterion not in CRITERIA:
            raise bad(f"criterion {self.criterion!r} is not one of {CRITERIA}")
        if min(self.input_size) <= 0:
            raise bad(f"input_size {self.input_size} must be positive")
        if self.base_macs <= 0 or self.macs <= 0 or self.macs > self.base_macs:
            raise bad(f"macs {self.macs} must be in 1..base_macs ({self.base_macs})")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise bad("a group is listed twice")
        for g in self.groups:
            if not (isinstance(g.channels, int) and isinstance(g.keep, int)):
                raise bad(f"group {g.name!r}: channels and keep must be integers")
            if not 1 <= g.keep <= g.channels:
                raise bad(f"group {g.name!r} keeps {g.keep} of {g.channels} channels")
        for r in self.layers:
            if r.precision not in PRECISIONS:
                raise bad(f"layer {r.name!r} precision {r.precision!r} is not one of {PRECISIONS}")
            if r.macs < 0 or r.in_channels <= 0 or r.out_channels <= 0:
                raise bad(f"layer {r.name!r} has a negative or empty size")
