"""Unsupervised adaptation to unlabelled crops: cluster-contrast (Dai et al. 2021) on our models.

``adapt(AdaptConfig(images=..., out=..., model=...))`` runs rounds of:

0. (once) re-estimate BatchNorm statistics on the crops, keeping the function;
1. embed every crop with the current model (eval mode);
2. k-reciprocal Jaccard distances between all crops (``reid.evaluate.rerank``), DBSCAN on them
   (scikit-learn): each cluster is a pseudo-identity, crops in no cluster sit the round out;
3. when the crops come from tracks (``groups``), the tracks' constraints are applied: the crops
   of one track share one pseudo-label (a track is one person), and tracks that must differ
   (``cannot_link``: they share a frame in one camera) never share one - a cluster holding both
   is split (:func:`pseudo_labels`);
4. train ``iters_per_round`` PK batches (P pseudo-identities x K crops, the training recipe's
   augmentation) with a cluster-centroid memory and InfoNCE: the memory starts each round at
   the clusters' mean features and follows each crop's feature with momentum; the loss pulls a
   crop to its own centroid against all the others (temperature 0.05).

Why the memory + InfoNCE rather than the supervised recipe's CE + triplet on pseudo-labels:
the number of clusters changes every round, so a CE classifier would be re-initialised each
round and needs many iterations to be useful again, while the memory is non-parametric and
right from the first batch (it *is* the clusters' centroids); cluster-contrast reports it as the
stronger of the two on Market/Duke adaptation, with fewer moving parts than SpCL's hybrid memory.

The out folder (``--resume`` continues it)::

    OUT/source.onnx      the start model exported (only when it is a checkpoint), for "before"
    OUT/last.pt          model + optimizer after the latest round (atomic write)
    OUT/log.csv          one row per round: clusters, clustered crops, loss, seconds
    OUT/adapted.pt       the final checkpoint (written at the end)
    OUT/model.onnx       the exported model, flip averaging in the graph (written at the end)
    OUT/report.json      config, rounds, before/after scores (written last)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from reid.data.market import read_market
from reid.embed import OnnxEmbedder, model_identity, source_model
from reid.errors import ReidTraceError
from reid.evaluate.domains import market_scores
from reid.evaluate.rerank import k_reciprocal_jaccard
from reid.models import (
    ReIDNet,
    extract_features,
    load_checkpoint,
    onnx_import,
    save_checkpoint,
)
from reid.models.export import export_onnx
from reid.models.features import load_batch, read_rgb
from reid.train.data import default_threads, make_loader, train_transform
from reid.train.engine import pick_device
from reid.train.runlog import append_row, check_run_folder, seed_everything

__all__ = [
    "AdaptConfig",
    "ClusterMemory",
    "adapt",
    "pseudo_labels",
]

Progress = Callable[[str, int, int], None]
LOG_FIELDS = ("round", "clusters", "clustered", "crops", "loss", "iters", "seconds", "lr")
MIN_CROPS = 16
"""Fewer crops than this cannot make even the smallest PK batch of pseudo-identities."""


@dataclass
class AdaptConfig:
    """An adaptation run. ``images`` are the unlabelled crops (image files).

    ``groups[i]`` is the track of crop ``i`` (``-1``: none, e.g. a folder of crops) and
    ``cannot_link`` pairs of tracks that are different people. ``model`` is what
    ``reid.models.load_checkpoint`` opens (a checkpoint, our ONNX export, or ``default`` /
    ``source``: the bundled FP32 source model, since the INT8 default embedder is not trainable).
    Defaults follow cluster-contrast (eps 0.6, k1 30, k2 6, momentum 0.1, temperature 0.05,
    Adam 3.5e-4) with a CPU-sized budget.
    """

    images: Sequence[Path]
    out: Path
    model: str = "default"
    groups: np.ndarray | None = None
    cannot_link: Sequence[tuple[int, int]] = ()
    eval_data: Path | None = None
    rounds: int = 6
    iters_per_round: int = 100
    max_minutes: float | None = None
    batch_size: int = 64
    num_instances: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    eps: float = 0.6
    min_samples: int = 4
    k1: int = 30
    k2: int = 6
    momentum: float = 0.1
    temperature: float = 0.05
    embed_batch: int = 64
    seed: int = 0
    resume: bool = False
    device: str = "auto"
    workers: int | None = None
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provenance for the report

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.images = [Path(p) for p in self.images]
        if self.eval_data is not None:
            self.eval_data = Path(self.eval_data)
        if self.groups is not None:
            self.groups = np.asarray(self.groups, np.int64)

    def validate(self) -> AdaptConfig:
        """Check what a user can get wrong; each problem is one ReidTraceError."""
        checks: list[tuple[bool, str, str]] = [
            (self.rounds >= 1, f"rounds must be >= 1, got {self.rounds}", "try --rounds 4"),
            (
                self.iters_per_round >= 1,
                f"iters per round must be >= 1, got {self.iters_per_round}",
                "try --iters-per-round 100",
            ),
            (
                self.max_minutes is None or self.max_minutes > 0,
                f"max minutes must be > 0, got {self.max_minutes}",
                "leave it unset for no limit",
            ),
            (
                self.num_instances >= 2
                and self.batch_size >= 2 * self.num_instances
                and self.batch_size % self.num_instances == 0,
                f"batch size {self.batch_size} must be a multiple of num_instances "
                f"{self.num_instances} (>= 2) holding at least 2 pseudo-identities",
                "use 64 (16 pseudo-identities x 4 crops)",
            ),
            (self.lr > 0, f"learning rate must be > 0, got {self.lr}", "use 3.5e-4"),
            (0 < self.eps < 1, f"eps must be in (0, 1), got {self.eps}", "use 0.6"),
            (self.min_samples >= 2, f"min samples must be >= 2, got {self.min_samples}", "use 4"),
            (self.k1 >= 2 and self.k2 >= 1, f"bad k1/k2 {self.k1}/{self.k2}", "use 30 and 6"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}", "0.1"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}", "0.05"),
            (
                self.groups is None or len(self.groups) == len(self.images),
                f"{len(self.groups) if self.groups is not None else 0} track ids for "
                f"{len(self.images)} crops",
                "pass one track id per crop (-1 for none)",
            ),
        ]
        for ok, message, hint in checks:
            if not ok:
                raise ReidTraceError(message, hint=hint or None)
        if len(self.images) < MIN_CROPS:
            raise ReidTraceError(
                f"{len(self.images)} crops are too few to cluster (need at least {MIN_CROPS})",
                hint="adapt on more crops: hundreds of people, several crops each",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings, the crop list and constraints as counts."""
        d = {k: v for k, v in asdict(self).items() if k not in ("images", "groups", "cannot_link")}
        d = {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}
        d["crops"] = len(self.images)
        d["tracks"] = 0 if self.groups is None else len(set(self.groups.tolist()) - {-1})
        d["cannot_link_pairs"] = len(self.cannot_link)
        return d


# --- pseudo-labels ------------------------------------------------------------------------------
def pseudo_labels(
    feats: np.ndarray,
    *,
    eps: float = 0.6,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    groups: np.ndarray | None = None,
    cannot_link: Sequence[tuple[int, int]] = (),
    progress: Progress | None = None,
) -> np.ndarray:
    """``(n,)`` int64 pseudo-identity per feature, ``-1`` = left out (DBSCAN noise).

    DBSCAN (``metric="precomputed"``) on the k-reciprocal Jaccard distance. With ``groups``
    (a track id per row, ``-1`` none): members of one track are put at distance 0 before
    clustering and given one label after it (the majority label of their clustered members, or
    a label of their own when none was clustered and the track has two crops or more); members
    of two ``cannot_link`` tracks are put at the largest distance, and a cluster that still
    holds both (DBSCAN chains through third crops) is split so no two such tracks share a label.
    Clusters of one crop are dropped.
    """
    from sklearn.cluster import DBSCAN  # the train extra; only clustering needs it

    dist = k_reciprocal_jaccard(feats, k1=k1, k2=k2, progress=progress)
    members: dict[int, np.ndarray] = {}
    if groups is not None:
        groups = np.asarray(groups, np.int64)
        order = np.argsort(groups, kind="stable")
        keys, starts = np.unique(groups[order], return_index=True)
        for key, part in zip(keys, np.split(order, starts[1:]), strict=True):
            if key >= 0:
                members[int(key)] = part
        for rows in members.values():
            dist[np.ix_(rows, rows)] = 0.0
        for a, b in cannot_link:
            ra, rb = members.get(int(a)), members.get(int(b))
            if ra is not None and rb is not None:
                dist[np.ix_(ra, rb)] = 1.0
                dist[np.ix_(rb, ra)] = 1.0
    np.fill_diagonal(dist, 0.0)
    np.maximum(dist, 0.0, out=dist)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(dist)
    labels = labels.astype(np.int64)
    if members:
        labels = _one_label_per_track(labels, members)
        labels = _split_conflicts(labels, feats, groups, members, cannot_link)
    return _compact(labels)


def _one_label_per_track(labels: np.ndarray, members: dict[int, np.ndarray]) -> np.ndarray:
    out = labels.copy()
    fresh = int(labels.max()) + 1
    for rows in members.values():
        got = labels[rows]
        got = got[got >= 0]
        if len(got):
            out[rows] = np.bincount(got).argmax()
        elif len(rows) >= 2:
            out[rows] = fresh
            fresh += 1
    return out


def _split_conflicts(
    labels: np.ndarray,
    feats: np.ndarray,
    groups: np.ndarray,
    members: dict[int, np.ndarray],
    cannot_link: Sequence[tuple[int, int]],
) -> np.ndarray:
    """Split every cluster holding two tracks that must differ (greedy colouring).

    Tracks go largest first into the sub-cluster whose mean feature is most alike among those
    holding no track it conflicts with, else into a new one; crops of no track then join the
    nearest sub-cluster. Hand-written: scikit-learn has no constrained clustering.
    """
    conflicts: dict[int, set[int]] = {}
    for a, b in cannot_link:
        if int(a) != int(b):
            conflicts.setdefault(int(a), set()).add(int(b))
            conflicts.setdefault(int(b), set()).add(int(a))
    if not conflicts:
        return labels
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    out = labels.copy()
    fresh = int(labels.max()) + 1
    for label in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == label)
        tracks = sorted({int(t) for t in groups[rows] if t >= 0})
        if not any(conflicts.get(t, set()) & set(tracks) for t in tracks):
            continue
        tracks.sort(key=lambda t: -len(members[t]))
        parts: list[tuple[set[int], np.ndarray, np.ndarray]] = []  # (tracks, rows, sum of feats)
        for t in tracks:
            mine = members[t]
            mean = unit[mine].sum(axis=0)
            ok = [i for i, (ts, _, _) in enumerate(parts) if not (ts & conflicts.get(t, set()))]
            if ok:
                best = max(ok, key=lambda i: float(parts[i][2] @ mean))
                ts, prow, psum = parts[best]
                parts[best] = (ts | {t}, np.concatenate([prow, mine]), psum + mean)
            else:
                parts.append(({t}, mine, mean))
        loose = rows[groups[rows] < 0]
        if len(loose):
            cents = np.stack([p[2] for p in parts])
            pick = (unit[loose] @ cents.T).argmax(axis=1)
            parts = [
                (ts, np.concatenate([prow, loose[pick == i]]), psum)
                for i, (ts, prow, psum) in enumerate(parts)
            ]
        for i, (_, prow, _) in enumerate(parts):
            if i:  # the first part keeps the label
                out[prow] = fresh
                fresh += 1
    return out


def _compact(labels: np.ndarray) -> np.ndarray:
    """Labels 0..C-1 by first appearance; clusters of one crop become -1."""
    out = np.full(len(labels), -1, np.int64)
    keep = labels >= 0
    if not keep.any():
        return out
    _, inv, counts = np.unique(labels[keep], return_inverse=True, return_counts=True)
    ok = counts[inv] >= 2
    idx = np.flatnonzero(keep)[ok]
    _, new = np.unique(inv[ok], return_inverse=True)
    out[idx] = new
    return out


# --- the memory ---------------------------------------------------------------------------------
class ClusterMemory(nn.Module):
    """Cluster-centroid memory and its InfoNCE loss (cluster-contrast's ``ClusterMemory``).

    ``features`` (C, D) unit centroids; ``loss(f, y)`` = cross-entropy of ``f @ features.T /
    temperature`` against ``y``; ``update(f, y)`` moves each crop's centroid towards the crop,
    ``c <- normalise(m c + (1 - m) f)``, after the step (no gradient flows into the memory).
    """

    def __init__(self, centroids: Tensor, *, temperature: float, momentum: float) -> None:
        super().__init__()
        self.register_buffer("features", F.normalize(centroids.float(), dim=1))
        self.temperature = temperature
        self.momentum = momentum

    def loss(self, feats: Tensor, labels: Tensor) -> Tensor:
        logits = F.normalize(feats, dim=1) @ self.features.T / self.temperature
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def update(self, feats: Tensor, labels: Tensor) -> None:
        f = F.normalize(feats.detach().float(), dim=1)
        for x, y in zip(f, labels.tolist(), strict=True):
            c = self.momentum * self.features[y] + (1.0 - self.momentum) * x
            self.features[y] = c / c.norm().clamp_min(1e-12)


class _PseudoImages(Dataset):
    """``(image, pseudo-label, 0)`` items in the shape ``make_loader``'s PK sampler reads."""

    def __init__(self, paths: Sequence[Path], labels: np.ndarray, transform: Any) -> None:
        keep = np.flatnonzero(labels >= 0)
        self.items = [(str(paths[i]), int(labels[i]), 0) for i in keep]
        self._classes = int(labels.max()) + 1 if len(keep) else 0
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return self._classes

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Tensor, int, int]:
        path, label, camid = self.items[i]
        img = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)
        return self.transform(img), label, camid


# --- the run ------------------------------------------------------------------------------------
def _check_out(cfg: AdaptConfig) -> Path:
    return check_run_folder(
        cfg.out, cfg.resume, what="an adaptation run", finished=("last.pt", "model.onnx")
    )


def _check_images(paths: Sequence[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ReidTraceError(
            f"{len(missing)} of {len(paths)} crops are missing, e.g. {str(missing[0])!r}",
            hint="pass existing image files",
        )


def _append_log(path: Path, row: dict[str, Any]) -> None:
    append_row(path, LOG_FIELDS, row)


def _scores(onnx_path: Path, eval_data: Path | None, progress: Progress | None) -> dict | None:
    """``reidtrace evaluate``'s mAP/CMC of an exported model (ONNX Runtime), or None."""
    if eval_data is None:
        return None
    return market_scores(eval_data, OnnxEmbedder(onnx_path), progress=progress, stage="evaluate")


def _source_onnx(cfg: AdaptConfig, model: ReIDNet) -> Path:
    """The start model as the ONNX file users run: the file itself, or an export (with flip
    averaging, as ``model.onnx`` will have) of a checkpoint, so before/after compare alike."""
    if cfg.model in ("default", "source"):  # the trainable FP32 source, not the INT8 default
        return source_model()
    if Path(cfg.model).suffix.lower() == ".onnx":
        return Path(cfg.model)
    return export_onnx(model, cfg.out / "source.onnx", flip=True)


def _embed(
    model: ReIDNet, paths: Sequence[Path], cfg: AdaptConfig, progress: Progress | None
) -> np.ndarray:
    """Eval-mode features of every crop. On CPU through an ONNX export of the current weights:
    ONNX Runtime embeds about twice as fast as eager PyTorch here, which outweighs the export."""
    device = next(model.parameters()).device
    if device.type != "cpu":
        return extract_features(model, paths, cfg.embed_batch, progress=progress, stage="embed")
    tmp = export_onnx(model, cfg.out / "round.onnx")
    try:
        embedder = OnnxEmbedder(tmp, threads=torch.get_num_threads(), batch_size=cfg.embed_batch)
        return embedder.embed_paths(paths, progress=progress, stage="embed crops")
    finally:
        tmp.unlink(missing_ok=True)


def adapt(cfg: AdaptConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Adapt ``cfg.model`` to the crops ``cfg.images``; returns the report (also written).

    Stops after ``rounds`` rounds or, checked after every batch, ``max_minutes`` of wall time
    (counted across resumes); either way the last round's model is exported. ``resume``
    continues ``OUT/last.pt`` at its next round.
    """
    cfg.validate()
    last_path = _check_out(cfg)
    _check_images(cfg.images)
    if cfg.eval_data is not None:
        read_market(cfg.eval_data, require_train=False)  # a bad folder fails before any work
    device = pick_device(cfg.device)
    auto_workers, auto_threads = default_threads(device)
    workers = auto_workers if cfg.workers is None else cfg.workers
    threads_before = torch.get_num_threads()
    torch.set_num_threads(auto_threads if cfg.threads is None else cfg.threads)
    try:
        return _adapt(cfg, progress, device, workers, last_path)
    finally:
        torch.set_num_threads(threads_before)


def _adapt(
    cfg: AdaptConfig,
    progress: Progress | None,
    device: torch.device,
    workers: int,
    last_path: Path,
) -> dict[str, Any]:
    if cfg.resume:
        model, meta = load_checkpoint(last_path, for_training=True)
        state = meta["extra"]["adapt"]
        if state["crops"] != len(cfg.images):
            raise ReidTraceError(
                f"--resume: the run adapted on {state['crops']} crops, not {len(cfg.images)}",
                hint="resume with the same crops as the run",
            )
    else:
        model, meta = load_checkpoint(cfg.model, for_training=True)
        state = {
            "round": 0,
            "seconds": 0.0,
            "crops": len(cfg.images),
            "source": str(cfg.model),
            "arch": model.info.name,
            "history": [],
            "before": None,
            "done": False,
        }
    seed_everything(cfg.seed + int(state["round"]))
    model.to(device)
    cfg.out.mkdir(parents=True, exist_ok=True)
    if not state.get("source_model_id"):
        source = _source_onnx(cfg, model)
        state["source_model_id"] = model_identity(source)
        state["before"] = _scores(source, cfg.eval_data, progress)
    if not cfg.resume:
        state["recalibrated_bn_layers"] = _recalibrate(model, cfg.images)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.resume and meta.get("optimizer"):
        optimizer.load_state_dict(meta["optimizer"])
    transform = train_transform(model.info)
    p_ids = cfg.batch_size // cfg.num_instances
    t_start = time.perf_counter() - float(state["seconds"])
    budget = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    log_path = cfg.out / "log.csv"

    def out_of_time() -> bool:
        return budget is not None and time.perf_counter() - t_start >= budget

    while int(state["round"]) < cfg.rounds and not out_of_time():
        rnd = int(state["round"]) + 1
        if progress:
            progress("rounds", rnd - 1, cfg.rounds)
        t0 = time.perf_counter()
        feats = _embed(model, cfg.images, cfg, progress)
        labels = pseudo_labels(
            feats,
            eps=cfg.eps,
            min_samples=cfg.min_samples,
            k1=cfg.k1,
            k2=cfg.k2,
            groups=cfg.groups,
            cannot_link=cfg.cannot_link,
        )
        clusters = int(labels.max()) + 1
        if clusters < p_ids:
            raise ReidTraceError(
                f"round {rnd}: the {len(cfg.images)} crops formed {clusters} clusters, fewer "
                f"than the {p_ids} pseudo-identities one batch needs",
                hint="add crops of more people, raise --eps, or lower --batch-size",
            )
        dataset = _PseudoImages(cfg.images, labels, transform)
        centroids = torch.from_numpy(
            np.stack([feats[labels == c].mean(axis=0) for c in range(clusters)])
        )
        memory = ClusterMemory(centroids, temperature=cfg.temperature, momentum=cfg.momentum).to(
            device
        )
        loader, sampler = make_loader(
            dataset,  # type: ignore[arg-type]  (duck-typed: items, num_classes)
            batch_size=cfg.batch_size,
            num_instances=cfg.num_instances,
            workers=workers,
            seed=cfg.seed + rnd,
            limit=cfg.iters_per_round * cfg.batch_size,
            pin_memory=device.type == "cuda",
        )
        model.train()
        done, total_loss = 0, 0.0
        while done < cfg.iters_per_round and not out_of_time():
            sampler.plan()
            for imgs, targets, _ in loader:
                imgs = imgs.to(device, non_blocking=True)
                targets = targets.to(device, non_blocking=True)
                f = model.bnneck(model.global_feature(imgs))
                loss = memory.loss(f, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                memory.update(f, targets)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RuntimeError(f"adaptation loss became {value} in round {rnd}")
                total_loss += value
                done += 1
                if progress:
                    progress("iterations", done, cfg.iters_per_round)
                if done >= cfg.iters_per_round or out_of_time():
                    break
        seconds = time.perf_counter() - t0
        row = {
            "round": rnd,
            "clusters": clusters,
            "clustered": int((labels >= 0).sum()),
            "crops": len(cfg.images),
            "loss": round(total_loss / max(done, 1), 5),
            "iters": done,
            "seconds": round(seconds, 2),
            "lr": cfg.lr,
        }
        state["history"].append(row)
        state["round"] = rnd
        state["seconds"] = time.perf_counter() - t_start
        save_checkpoint(
            last_path,
            model,
            epoch=rnd,
            optimizer=optimizer,
            extra={"adapt": state, "config": cfg.to_dict()},
        )
        _append_log(log_path, row)
        if progress:
            progress("rounds", rnd, cfg.rounds)
    return _finish(cfg, model, state, progress)


def _recalibrate(model: ReIDNet, paths: Sequence[Path], batch: int = 64) -> int:
    """Re-estimate BatchNorm statistics on (up to 512 of) the crops, keeping the function.

    A model imported from ONNX has identity BatchNorms (folded into the convs) that batch
    statistics would break at the first step; a checkpoint has its training domain's
    statistics. Either way, after this a training-mode forward pass on these crops computes
    what the eval-mode model does (``onnx_import.recalibrate_batchnorm``).
    """
    pick = np.random.default_rng(0).choice(len(paths), size=min(len(paths), 512), replace=False)
    chosen = [paths[i] for i in sorted(pick)]
    device = next(model.parameters()).device
    batches = (
        load_batch(chosen[lo : lo + batch], model.info).to(device)
        for lo in range(0, len(chosen), batch)
    )
    return onnx_import.recalibrate_batchnorm(model, batches)


def _finish(
    cfg: AdaptConfig, model: ReIDNet, state: dict[str, Any], progress: Progress | None
) -> dict[str, Any]:
    model.eval()
    model.cpu()
    rounds = int(state["round"])
    extra = {"adapt": {**state, "done": True}, "config": cfg.to_dict()}
    ckpt = save_checkpoint(cfg.out / "adapted.pt", model, epoch=rounds, extra=extra)
    onnx_path = export_onnx(
        model,
        cfg.out / "model.onnx",
        flip=True,
        extra_metadata={"adapted_from": str(cfg.model), "adapt_rounds": str(rounds)},
    )
    after = _scores(onnx_path, cfg.eval_data, progress)

    report = {
        "out": str(cfg.out),
        "model": str(onnx_path),
        "model_id": model_identity(onnx_path),
        "checkpoint": str(ckpt),
        "source": str(cfg.model),
        "source_model_id": state.get("source_model_id"),
        "rounds": rounds,
        "minutes": round(float(state["seconds"]) / 60.0, 2),
        "stopped_by_time": rounds < cfg.rounds,
        "history": state["history"],
        "eval": str(cfg.eval_data) if cfg.eval_data is not None else None,
        "before": state["before"],
        "after": after,
        "config": cfg.to_dict(),
    }
    tmp = cfg.out / ".report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    tmp.replace(cfg.out / "report.json")
    return report
