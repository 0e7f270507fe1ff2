"""The whole compression chain as one resumable run: ``reidtrace compress``.

``compress(cfg)`` takes a trained model (``default`` or ``source``: the bundled FP32 model
``source_fp32.onnx`` that the default embedder was compressed from; one of our ONNX exports; or
a training checkpoint), a Market-format folder and a budget, and runs the stages of this package
in order, each writing its outputs into ``cfg.out`` under a temporary name renamed into place:

=========  =================================================================================
plan       sensitivity of every channel group + budget search -> ``plan.json`` (a
           ``keep:GROUP=N,...`` budget: exactly those widths, no measurement, no search)
prune      the plan applied (``criterion``; ThiNet refits on training crops) -> ``pruned.pt``
distill    fine-tuning from the uncompressed teacher -> ``distilled.pt`` (``distill/`` keeps
           the run folder; ``distill_iters=0`` skips it); with ``teacher_flip`` the teacher's
           embedding is flip-averaged, as the two-pass source file computes it
export     FP32 ONNX of the pruned and the final model (``pruned_fp32.onnx``,
           ``model_fp32.onnx``; ``source_fp32.onnx`` when the source is a checkpoint)
quantize   static INT8 of the final model -> ``model_int8.onnx``; the plan's per-layer
           ``precision`` is filled in from the quantizer's measured FP32 fallback
evaluate   Market-protocol mAP / rank-1 of every model on the folder's query/gallery split
           -> ``evaluation.json``
report     ``report.json``, ``report.md``, ``pareto.png`` (speed measured with
           ``compression.bench``)
=========  =================================================================================

``stages.json`` records the arguments and each finished stage; it is rewritten (atomically)
after every stage, and its ``complete`` flag is set last, after every other file. Running again
with the same arguments resumes at the first unfinished stage (distillation continues from its
last checkpoint; any other stage killed half-way runs again); other arguments are refused
unless ``force`` (which deletes this run's files first). Every input is checked before anything
is written, so a bad model, data folder, calibration folder or budget leaves no folder behind.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from compression.calibration import find_crops
from compression.chain_report import write_atomic
from compression.plan import CompressionPlan
from compression.prune import CRITERIA, count_macs, prune_model
from compression.sensitivity import (
    RATIOS,
    cosine_proxy,
    keep_plan,
    parse_budget,
    parse_keep,
    search_plan,
)
from reid.data.market import read_market
from reid.errors import ReidTraceError
from reid.models import ReIDNet, load_checkpoint, save_checkpoint
from reid.models.features import load_batch
from reid.models.onnx_import import SOURCE_WORDS, is_onnx_weights, resolve_onnx_path

__all__ = [
    "DISTILL_TERMS",
    "STAGES",
    "CompressConfig",
    "compress",
    "normalize_budget",
]

STAGES = ("plan", "prune", "distill", "export", "quantize", "evaluate", "report")
DISTILL_TERMS = ("logit", "feature", "embed", "relational")
STATE_FORMAT = "reidtrace-compress-run"
VERSION = 1
Progress = Callable[[str, int, int], None]
# the files a run writes (what --force removes; nothing else in the folder is touched)
RUN_FILES = (
    "stages.json", "plan.json", "pruned.pt", "distilled.pt", "distill", "source_fp32.onnx",
    "pruned_fp32.onnx", "model_fp32.onnx", "model_int8.onnx", "evaluation.json", "report.json",
    "report.md", "pareto.png",
)  # fmt: skip
# arguments that change no output, so a resumed run may change them (and dropped_terms, which
# resolve() derives from teacher_flip and distill_terms: not an argument)
_FREE_ARGS = ("out", "threads", "device", "force", "bench_repeats", "dropped_terms")
# arguments added after the first runs were recorded, with the value that reproduces what those
# runs did: a folder whose stages.json lacks one resumes when the new value is that one
_ADDED_ARGS: dict[str, Any] = {"teacher_flip": False, "lr": 1e-4, "bias_crops": 64}
_KEYED = re.compile(r"^\s*(macs|gmacs|mmacs|latency)\s*=\s*(.+?)\s*$", re.IGNORECASE)


def normalize_budget(text: str) -> str:
    """``macs=0.5`` -> ``0.5x``, ``gmacs=0.1`` -> ``0.1G``, ``mmacs=90`` -> ``90M``,
    ``latency=3ms`` -> ``3ms``; ``keep:A=8, B=16`` -> ``keep:A=8,B=16`` (spaces dropped, so
    resume compares widths, not spelling); anything else as given
    (``compression.sensitivity.parse_budget`` reads it: ``0.5x``, ``93M``, ``1.2G``, ``8ms``)."""
    keep = parse_keep(str(text))
    if keep is not None:
        return "keep:" + ",".join(f"{k}={v}" for k, v in keep.items())
    m = _KEYED.match(str(text))
    if m is None:
        return str(text).strip()
    key, value = m.group(1).lower(), m.group(2)
    if key == "macs":
        return f"{value}x" if not value.lower().endswith("x") else value
    if key == "latency":
        return value if value.lower().endswith("ms") else f"{value}ms"
    return f"{value}{'G' if key == 'gmacs' else 'M'}"


@dataclass
class CompressConfig:
    """One ``reidtrace compress`` run (the CLI flags, with the same defaults)."""

    model: str
    data: Path
    budget: str
    out: Path
    calibration: Path | None = None  # None: the --data folder's bounding_box_train/
    criterion: str = "thinet"
    ratios: tuple[float, ...] = RATIOS
    samples: int = 32  # training crops for ThiNet's refit and the sensitivity proxy
    distill_iters: int = 400
    distill_terms: tuple[str, ...] = DISTILL_TERMS
    flip: bool = True
    # None: on when the source file flip-averages and ``flip`` is off (see resolve())
    teacher_flip: bool | None = None
    lr: float = 1e-4  # distillation's backbone learning rate (compression.distill's default)
    calibration_crops: int = 256
    bias_crops: int = 64  # INT8 bias correction crops (reidtrace quantize's default)
    fp32_types: str = "auto"
    calibration_method: str = "percentile"
    bench_repeats: int = 10  # 0: no speed measurement (the report leaves speed empty)
    threads: int = 2
    seed: int = 0
    device: str = "auto"
    force: bool = False
    # set by resolve(): terms taken out of ``all`` (reported, not an argument: never recorded)
    dropped_terms: tuple[str, ...] = field(default=(), init=False, repr=False)

    def validate(self) -> CompressConfig:
        """Check every plain value (files come later); one-line ReidTraceError when wrong."""
        self.budget = normalize_budget(self.budget)
        if parse_keep(self.budget) is None:  # keep: budgets are read by normalize_budget
            parse_budget(self.budget, 1)  # syntax only; the search checks what it can reach
        if self.criterion not in CRITERIA:
            raise ReidTraceError(
                f"unknown --criterion {self.criterion!r}", hint=f"choose one of {CRITERIA}"
            )
        if not self.ratios or any(not 0 < r < 1 for r in self.ratios):
            raise ReidTraceError(
                f"--ratios must lie in (0, 1), got {list(self.ratios)}", hint="e.g. 0.5,0.9"
            )
        from compression.quantize import LAYER_TYPES, METHODS

        if self.calibration_method not in METHODS:
            raise ReidTraceError(
                f"unknown --calibration-method {self.calibration_method!r}",
                hint=f"choose one of {sorted(METHODS)}",
            )
        types = [t.strip() for t in self.fp32_types.lower().split(",") if t.strip()]
        if types not in (["auto"], ["none"], []) and set(types) - set(LAYER_TYPES):
            raise ReidTraceError(
                f"unknown --fp32-types {self.fp32_types!r}",
                hint=f"use auto, none or a comma-separated list of {', '.join(LAYER_TYPES)}",
            )
        bad = [t for t in self.distill_terms if t not in DISTILL_TERMS]
        if bad:
            raise ReidTraceError(
                f"unknown distillation term(s) {', '.join(bad)}",
                hint=f"use all, none or a comma-separated list of {', '.join(DISTILL_TERMS)}",
            )
        if not (self.lr > 0 and self.lr < 1):
            raise ReidTraceError(f"--lr must lie in (0, 1), got {self.lr}", hint="e.g. 5e-5")
        for name in ("samples", "calibration_crops", "bias_crops", "threads"):
            if getattr(self, name) < 1:
                raise ReidTraceError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}",
                    hint="see reidtrace compress --help",
                )
        for name in ("distill_iters", "bench_repeats"):
            if getattr(self, name) < 0:
                raise ReidTraceError(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}",
                    hint="0 skips it",
                )
        return self

    def resolve(self) -> CompressConfig:
        """Settle ``teacher_flip`` and the terms it allows (after :meth:`validate`, before the
        arguments are recorded, so resume compares what the run does, not how it was asked).

        Unset, the teacher is flip-averaged exactly when the student loses the flip averaging
        its source file has (``flip`` off, an ONNX source with ``flip_average`` in its
        metadata, as the bundled source): the teacher is then what the source file computes.
        A flip-averaged teacher has no per-position feature maps to match, so the ``feature``
        term is refused with it, except under ``all`` (every term), which then drops it and
        says so in the report (``distill.note``).
        """
        self.dropped_terms = ()
        if self.teacher_flip is None:
            self.teacher_flip = not self.flip and _source_flips(self.model)
        if self.teacher_flip and "feature" in self.distill_terms and self.distill_iters > 0:
            if set(self.distill_terms) != set(DISTILL_TERMS):
                raise ReidTraceError(
                    "the feature term cannot be used with a flip-averaged teacher (its feature "
                    "maps are of two images)",
                    hint="drop feature from --distill-terms, or pass --no-teacher-flip",
                )
            self.distill_terms = tuple(t for t in self.distill_terms if t != "feature")
            self.dropped_terms = ("feature",)
        return self

    def recorded(self) -> dict[str, Any]:
        """The arguments ``stages.json`` records: paths absolute, the free ones left out."""
        d = asdict(self)
        d["model"] = self.model if self.model in SOURCE_WORDS else str(Path(self.model).resolve())
        d["data"] = str(Path(self.data).resolve())
        d["calibration"] = None if self.calibration is None else str(self.calibration.resolve())
        d["ratios"] = [float(r) for r in self.ratios]
        d["distill_terms"] = list(self.distill_terms)
        return {k: v for k, v in d.items() if k not in _FREE_ARGS}


def _source_flips(model: str) -> bool:
    """Whether ``model`` is an ONNX file (or the bundled source) whose graph flip-averages.

    Reads the export's ``flip_average`` metadata; a checkpoint, or a path that does not exist
    (``_check_inputs`` refuses it later with its own message), is False.
    """
    import onnx

    if not is_onnx_weights(model):
        return False
    path = Path(resolve_onnx_path(model)).expanduser()
    if not path.is_file():
        return False
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # any unreadable file (protobuf DecodeError...): _check_inputs names it
        return False
    return any(p.key == "flip_average" and p.value == "1" for p in proto.metadata_props)


# -- the run folder ------------------------------------------------------------------------------


def _write_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _write_json(path: Path, data: Any) -> None:
    _write_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


class _State:
    """``stages.json``: the arguments, the finished stages' summaries, the ``complete`` flag."""

    def __init__(self, out: Path, args: dict[str, Any]) -> None:
        self.out, self.path = out, out / "stages.json"
        self.data: dict[str, Any] = {
            "format": STATE_FORMAT, "version": VERSION, "args": args, "stages": {},
            "complete": False,
        }  # fmt: skip

    @classmethod
    def open(cls, out: Path, args: dict[str, Any], force: bool) -> _State:
        """The folder's run (resumed) or a fresh one; refuses foreign or mismatched folders."""
        state = cls(out, args)
        if out.exists() and not out.is_dir():
            raise ReidTraceError(f"--out {str(out)!r} is a file", hint="pass a folder")
        if not state.path.is_file():
            if out.is_dir() and any(out.iterdir()):
                raise ReidTraceError(
                    f"--out {str(out)!r} is not empty and holds no compress run (no stages.json)",
                    hint="choose a new or empty folder",
                )
            return state
        try:
            old = json.loads(state.path.read_text())
            if old.get("format") != STATE_FORMAT or old.get("version") != VERSION:
                raise ValueError("format")
        except (OSError, ValueError) as err:
            raise ReidTraceError(
                f"{str(state.path)!r} is not a readable compress record ({type(err).__name__})",
                hint="choose another --out (the folder was not written by this version)",
            ) from err
        if force:
            for name in RUN_FILES:
                p = out / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
            return state
        recorded = {**{k: v for k, v in _ADDED_ARGS.items() if k in args}, **old["args"]}
        diff = sorted(k for k in set(recorded) | set(args) if recorded.get(k) != args.get(k))
        if diff:
            k = diff[0]
            raise ReidTraceError(
                f"--out {str(out)!r} holds a compress run with other arguments "
                f"({k}: {old['args'].get(k)!r} there, {args.get(k)!r} now"
                f"{f', and {len(diff) - 1} more' if len(diff) > 1 else ''})",
                hint="rerun with the same arguments to resume, pass --force to restart, or "
                "choose another --out",
            )
        state.data = {**old, "args": args}  # equal to the record (added defaults filled in)
        return state

    @property
    def done(self) -> dict[str, Any]:
        return self.data["stages"]

    def save(self) -> None:
        _write_json(self.path, self.data)

    def finish(self, stage: str, summary: dict[str, Any]) -> None:
        self.done[stage] = summary
        self.save()

    def complete(self) -> None:
        self.data["complete"] = True
        _write_json(self.path, self.data)


# -- checks before anything is written -------------------------------------------------------------


def _check_inputs(cfg: CompressConfig) -> tuple[ReIDNet, dict, Path | None]:
    """Load the source model and check the data and calibration folders (nothing written)."""
    dataset = read_market(cfg.data)  # missing folders or an empty split: one line each
    if not dataset.train:
        raise ReidTraceError(
            f"the training split of {str(dataset.root)!r} holds no images",
            hint="compress needs bounding_box_train/ for pruning samples and distillation",
        )
    find_crops(cfg.calibration if cfg.calibration is not None else cfg.data)
    if cfg.distill_iters > 0:
        from reid.train.engine import pick_device

        pick_device(cfg.device)  # --device cuda without CUDA: refused before any work
    spec = str(cfg.model)
    if spec not in SOURCE_WORDS and not Path(spec).expanduser().is_file():
        raise ReidTraceError(
            f"--model {spec!r} does not exist",
            hint="pass default or source (the bundled FP32 model), an FP32 .onnx export or a "
            "`reidtrace train` checkpoint (.pt)",
        )
    model, meta = load_checkpoint(spec if spec in SOURCE_WORDS else Path(spec).expanduser())
    source_onnx = resolve_onnx_path(spec) if is_onnx_weights(spec) else None
    if source_onnx is not None:
        source_onnx = Path(source_onnx).expanduser().resolve()
    return model.cpu().eval(), meta, source_onnx


def _samples(cfg: CompressConfig, model: ReIDNet) -> torch.Tensor:
    """``cfg.samples`` training crops spread evenly over the split (a fixed choice)."""
    train = read_market(cfg.data).train
    step = max(1, len(train) // cfg.samples)
    return load_batch([im.path for im in train[::step][: cfg.samples]], model.info)


# -- the stages ----------------------------------------------------------------------------------


@dataclass
class _Run:
    cfg: CompressConfig
    source: ReIDNet
    source_meta: dict
    source_onnx: Path | None  # the source file when the source is ONNX, else None
    state: _State
    progress: Progress | None
    _samples: torch.Tensor | None = None

    @property
    def out(self) -> Path:
        return self.cfg.out

    @property
    def source_untrained(self) -> bool:
        """The source checkpoint's metadata says its weights were never trained (random init:
        its mAP and the chain's mAP drop mean nothing, only MACs, size and speed do)."""
        return bool((self.source_meta.get("extra") or {}).get("untrained"))

    def samples(self) -> torch.Tensor:
        if self._samples is None:
            self._samples = _samples(self.cfg, self.source)
        return self._samples

    def plan(self) -> dict[str, Any]:
        cfg = self.cfg
        if parse_keep(cfg.budget) is not None:  # widths given: nothing to measure or search
            plan = keep_plan(self.source, cfg.budget, criterion=cfg.criterion)
            self.state.save()  # the widths fit the model: from here on the folder is this run's
            plan.save(self.out / "plan.json")
            return {"file": "plan.json", "macs": plan.macs, "base_macs": plan.base_macs}
        samples = self.samples()
        plan = search_plan(
            self.source,
            cfg.budget,
            cosine_proxy(self.source, samples),
            criterion=cfg.criterion,
            samples=samples if cfg.criterion == "thinet" else None,
            ratios=cfg.ratios,
            progress=self.progress,
        )
        plan.notes["samples"] = int(len(samples))
        self.state.save()  # the search succeeded: from here on the folder is this run's
        plan.save(self.out / "plan.json")  # the first file of a run: creates the folder
        return {"file": "plan.json", "macs": plan.macs, "base_macs": plan.base_macs}

    def prune(self) -> dict[str, Any]:
        cfg = self.cfg
        plan = CompressionPlan.load(self.out / "plan.json")
        pruned = prune_model(
            self.source,
            plan.keep(),
            criterion=cfg.criterion,
            samples=self.samples() if cfg.criterion == "thinet" else None,
            progress=self.progress,
        )
        macs = count_macs(pruned)
        extra: dict[str, Any] = {"plan_macs": plan.macs}
        if self.source_untrained:  # a pruned random network is no more trained than its source
            extra["untrained"] = True
        save_checkpoint(self.out / "pruned.pt", pruned, epoch=0, extra=extra)
        params = sum(p.numel() for k, p in pruned.named_parameters() if "classifier" not in k)
        return {"file": "pruned.pt", "macs": int(macs), "params": int(params)}

    def distill(self) -> dict[str, Any]:
        from compression.distill import DistillConfig, distill_finetune

        cfg = self.cfg
        if cfg.distill_iters == 0:
            return {"skipped": True, "file": None, "teacher_flip": bool(cfg.teacher_flip)}
        run = self.out / "distill"
        last = run / "last.pt"
        resume = last.is_file()
        weights = {f"{t}_weight": float(t in cfg.distill_terms) for t in DISTILL_TERMS}
        dcfg = DistillConfig(
            iters=cfg.distill_iters,
            lr=cfg.lr,
            teacher_flip=bool(cfg.teacher_flip),
            checkpoint_every=min(50, cfg.distill_iters),
            seed=cfg.seed,
            device=cfg.device,
            resume=resume,
            **weights,  # type: ignore[arg-type]
        )
        steps = 0
        if resume:
            _, meta = load_checkpoint(last)
            steps = int(meta["extra"].get("step", 0))
        if steps >= cfg.distill_iters:  # trained to the end, killed before the stage was noted
            model, _ = load_checkpoint(last)
            summary = {"steps": steps, "stopped": "done", "device": "from checkpoint"}
        else:
            student, _ = load_checkpoint(self.out / "pruned.pt", for_training=True)
            teacher = self.source if dcfg.uses_teacher else None
            summary = distill_finetune(student, teacher, cfg.data, run, dcfg, self.progress)
            model = summary["model"]
            self.source.cpu()  # the teacher went to the training device; export runs on CPU
        save_checkpoint(self.out / "distilled.pt", model.cpu().eval(), epoch=int(summary["steps"]))
        result: dict[str, Any] = {
            "file": "distilled.pt",
            "steps": int(summary["steps"]),
            "resumed": resume,
            "device": str(summary["device"]),
            "terms": list(cfg.distill_terms),
            "teacher_flip": dcfg.teacher_flip,
            "lr": dcfg.lr,
        }
        if cfg.dropped_terms:
            result["note"] = (
                f"{', '.join(cfg.dropped_terms)} dropped from --distill-terms all: the teacher is "
                "flip-averaged"
            )
        return result

    def export(self) -> dict[str, Any]:
        from reid.models.export import export_onnx

        cfg = self.cfg
        files: dict[str, str] = {}
        if self.source_onnx is None:  # a checkpoint: its FP32 ONNX is the reference row
            export_onnx(self.source, self.out / "source_fp32.onnx", flip=cfg.flip)
            files["source"] = "source_fp32.onnx"
        pruned, _ = load_checkpoint(self.out / "pruned.pt")
        meta = {"compress_stage": "pruned", "compress_budget": cfg.budget}
        export_onnx(pruned, self.out / "pruned_fp32.onnx", flip=cfg.flip, extra_metadata=meta)
        files["pruned"] = "pruned_fp32.onnx"
        if (self.out / "distilled.pt").is_file() and cfg.distill_iters > 0:
            model, _ = load_checkpoint(self.out / "distilled.pt")
            meta = {**meta, "compress_stage": "distilled"}
            export_onnx(model, self.out / "model_fp32.onnx", flip=cfg.flip, extra_metadata=meta)
        else:  # no distillation: the final FP32 model is the pruned one
            src = self.out / "pruned_fp32.onnx"
            write_atomic(self.out / "model_fp32.onnx", lambda tmp: shutil.copyfile(src, tmp))
        files["final"] = "model_fp32.onnx"
        return {"files": files, "flip": cfg.flip}

    def quantize(self) -> dict[str, Any]:
        from compression.quantize import quantize_onnx

        cfg = self.cfg
        report = quantize_onnx(
            self.out / "model_fp32.onnx",
            self.out / "model_int8.onnx",
            cfg.calibration if cfg.calibration is not None else cfg.data,
            method=cfg.calibration_method,
            num_crops=cfg.calibration_crops,
            bias_crops=cfg.bias_crops,
            fp32_types=cfg.fp32_types,
            seed=cfg.seed,
            threads=cfg.threads,
            progress=self.progress,
        ).as_dict()
        plan = CompressionPlan.load(self.out / "plan.json")
        pruned, _ = load_checkpoint(self.out / "pruned.pt")
        fill_precision(plan, pruned, report["fp32_types"])
        plan.notes["quantization"] = {
            k: report[k]
            for k in ("method", "int8_types", "fp32_types", "probe_ms", "cosine_mean", "cosine_min")
        }
        plan.save(self.out / "plan.json")
        keep = ("int8_types", "fp32_types", "probe_ms", "cosine_mean", "cosine_min", "method")
        return {"file": "model_int8.onnx", **{k: report[k] for k in keep}}

    def rows(self) -> list[tuple[str, Path]]:
        """``(stage, ONNX file)`` of every model the report compares, source first."""
        source = self.source_onnx or self.out / "source_fp32.onnx"
        rows = [("source", source), ("pruned", self.out / "pruned_fp32.onnx")]
        if self.cfg.distill_iters > 0:
            rows.append(("distilled", self.out / "model_fp32.onnx"))
        rows.append(("int8", self.out / "model_int8.onnx"))
        return rows

    def evaluate(self) -> dict[str, Any]:
        from reid.evaluate.run import evaluate_model

        scores = {}
        for stage, path in self.rows():
            r = evaluate_model(
                self.cfg.data, path, threads=self.cfg.threads, progress=self.progress
            )
            keys = ("mAP", "rank1", "rank5", "mINP", "num_query", "num_gallery")
            scores[stage] = {k: r[k] for k in keys}
        _write_json(self.out / "evaluation.json", scores)
        return {"file": "evaluation.json", "scores": scores}

    def report(self) -> dict[str, Any]:
        from compression.chain_report import build_report, write_report

        cfg = self.cfg
        report = build_report(
            args=self.state.data["args"],
            stages=self.state.done,
            rows=self.rows(),
            out=self.out,
            threads=cfg.threads,
            repeats=cfg.bench_repeats,
            source_untrained=self.source_untrained,
            progress=self.progress,
        )
        write_report(self.out, report)
        return {"files": ["report.json", "report.md", "pareto.png"]}


def fill_precision(plan: CompressionPlan, model: torch.nn.Module, fp32_types: list[str]) -> None:
    """Set each plan layer's ``precision`` from the layer types the quantizer kept in FP32.

    The quantizer decides per ONNX layer type (``compression.quantize.layer_types``: stem
    ``conv``, ``depthwise_conv``, ``pointwise_conv``, ``linear``); each plan layer is classified
    the same way from its module in the pruned network.
    """
    modules = dict(model.named_modules())
    for row in plan.layers:
        m = modules.get(row.name)
        if isinstance(m, torch.nn.Linear) or row.kind == "linear":
            kind = "linear"
        elif isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels:
            kind = "depthwise_conv"
        elif isinstance(m, torch.nn.Conv2d) and tuple(m.kernel_size) == (1, 1):
            kind = "pointwise_conv"
        elif row.kind == "depthwise":
            kind = "depthwise_conv"
        else:
            kind = "conv"
        row.precision = "fp32" if kind in fp32_types else "int8"


def compress(cfg: CompressConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) the chain; returns the report (``report.json``'s content).

    Every input is checked first; a folder that already completed with the same arguments is
    not touched and its report is returned.
    """
    cfg.validate().resolve()
    cfg.out = Path(cfg.out).expanduser()
    state = _State.open(cfg.out, cfg.recorded(), cfg.force)
    if state.data["complete"]:
        if (cfg.out / "report.json").is_file():
            return json.loads((cfg.out / "report.json").read_text())
        state.done.pop("report", None)  # the report was deleted: write it again
        state.data["complete"] = False
    source, meta, source_onnx = _check_inputs(cfg)
    torch.set_num_threads(cfg.threads)
    run = _Run(cfg, source, meta, source_onnx, state, progress)
    for i, stage in enumerate(STAGES):
        if stage not in state.done:
            t0 = time.perf_counter()
            summary = getattr(run, stage)()
            summary["seconds"] = round(time.perf_counter() - t0, 1)
            state.finish(stage, summary)
        if progress:  # after the stage: an input error raised in it prints no bar
            progress("compress stages", i + 1, len(STAGES))
    state.complete()  # the marker: written after every other file
    return json.loads((cfg.out / "report.json").read_text())
