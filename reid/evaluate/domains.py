"""How well a ReID model works outside its training world: ``reidtrace bench reid-domains``.

Three retrieval checks, each scored by ``reid.evaluate.protocol.evaluate_rank`` (the Market-1501
protocol every number in the project comes from), all through the ONNX embedder (torch-free):

- **Market folders** (the synthetic hold-out, CUHK01): query against gallery, as ``reidtrace
  evaluate`` scores them; ``transform`` applies a test-time change to every crop of both sides
  (the gap analysis: resolution, grayscale, colour normalisation, blur, flip).
- **Cross-time retrieval on real MOT truth** (PETS09-S2L1 frames 1-397, TUD-Stadtmitte): crops
  are cut from the truth boxes of the footage (visible and tall enough, one every ``step_s``
  seconds per identity); every crop is a query and the gallery is every crop. For a query at time
  ``t``, the crops *of its own identity* closer than ``gap_s`` seconds (itself included) are
  ignored, exactly as Market ignores same-identity same-camera entries: in ``evaluate_rank`` the
  query has "camera" 0 and each gallery crop has camera 0 when ``|t_g - t| < gap_s`` and 1
  otherwise. So a hit is the same person seen at least ``gap_s`` seconds earlier or later, and
  other people (even in the same frame) stay in the gallery as distractors. Queries without such
  a crop are not scored. Seconds come from the sequence's ``seqinfo.ini`` frame rate (the capture
  rate: 7 for PETS, 25 for TUD), not the container's.

The tracking check (IDF1 with the ReID cue) ingests footage, so it lives with ingestion
(``indexer.ingest.bench_tracking``) and the CLI joins the two.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid.data.market import read_market
from reid.embed import OnnxEmbedder, read_image
from reid.errors import ReidTraceError
from reid.evaluate.protocol import cosine_distmat, evaluate_rank
from reid.video import read_frames_at

__all__ = [
    "MOT_SEQUENCES",
    "SHARED_DATA",
    "TRANSFORMS",
    "MotTruth",
    "bench_reid_domains",
    "cross_time_scores",
    "cut_mot_crops",
    "embed_mot_crops",
    "gap_analysis",
    "market_scores",
    "mot_crop_table",
    "mot_sequences",
    "windowed_rank",
]

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CUHK01 = SHARED_DATA / "real_reid" / "cuhk01"

Progress = Callable[[str, int, int], None]
Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MotTruth:
    """A MOTChallenge truth file and the footage its boxes were drawn on."""

    name: str
    gt: Path
    video: Path
    scale: float  # truth pixels -> footage pixels (PETS: 768x576 truth on the 480x360 clip)
    fps: float  # capture frame rate (seqinfo.ini frameRate)
    last_frame: int | None = None  # 1-based, inclusive; None = the whole truth


def _seqinfo_fps(folder: Path) -> float:
    ini = configparser.ConfigParser()
    ini.read(folder / "seqinfo.ini", encoding="utf-8")
    try:
        return float(ini["Sequence"]["frameRate"])
    except (KeyError, ValueError) as err:
        raise ReidTraceError(
            f"{folder / 'seqinfo.ini'} has no frameRate", hint="the cross-time gap needs it"
        ) from err


def mot_sequences(shared: Path = SHARED_DATA) -> dict[str, MotTruth | str]:
    """The real dev sequences in ``shared`` (a reason string where one is absent)."""
    out: dict[str, MotTruth | str] = {}
    pets = shared / "mot" / "PETS09-S2L1-first-half"
    tud = shared / "mot" / "TUD-Stadtmitte"
    specs = {
        "PETS09-S2L1 1-397": (pets, shared / "pets2009_s2l1_view001_480x360.avi", 0.625, 397),
        "TUD-Stadtmitte": (tud, tud / "TUD-Stadtmitte.mp4", 1.0, None),
    }
    for name, (folder, video, scale, last) in specs.items():
        gt = folder / "gt" / "gt.txt"
        if not gt.is_file() or not video.is_file() or not (folder / "seqinfo.ini").is_file():
            out[name] = f"{folder} or its footage is not there"
            continue
        out[name] = MotTruth(name, gt, video, scale, _seqinfo_fps(folder), last)
    return out


MOT_SEQUENCES = ("PETS09-S2L1 1-397", "TUD-Stadtmitte")


# --- cross-time retrieval --------------------------------------------------------------------
def mot_crop_table(
    gt: np.ndarray,
    *,
    frame_size: tuple[int, int],
    fps: float,
    scale: float = 1.0,
    last_frame: int | None = None,
    min_height: float = 48.0,
    max_cover: float = 0.3,
    step_s: float = 0.5,
) -> dict[str, np.ndarray]:
    """Choose the truth boxes to cut crops from.

    ``gt`` holds MOTChallenge rows ``frame, id, x, y, w, h, flag, ...`` (1-based frames, truth
    pixels). Kept: rows with flag != 0 in frames ``<= last_frame``, scaled by ``scale``, wholly
    inside the ``frame_size`` (width, height) frame, at least ``min_height`` px tall, covered by
    no other truth box of the frame over more than ``max_cover`` of their area (a crop of two
    people would be a wrong label), and only frames on a ``step_s`` grid (consecutive frames
    are near-duplicates). Returns ``frame`` (0-based, for reading the footage), ``pid``,
    ``xyxy`` (footage pixels) and ``time`` (seconds).
    """
    gt = np.asarray(gt, np.float64)
    if gt.ndim != 2 or gt.shape[1] < 7:
        raise ReidTraceError(
            f"MOT truth must have >= 7 columns (frame,id,x,y,w,h,flag), got shape {gt.shape}",
            hint="give a MOTChallenge gt.txt",
        )
    if not fps > 0 or not step_s > 0 or min_height < 0 or not 0 <= max_cover <= 1:
        raise ReidTraceError(
            f"bad crop settings: fps={fps}, step_s={step_s}, min_height={min_height}, "
            f"max_cover={max_cover}",
            hint="fps and step_s > 0, min_height >= 0, max_cover in [0, 1]",
        )
    rows = gt[gt[:, 6] != 0]
    if last_frame is not None:
        rows = rows[rows[:, 0] <= last_frame]
    frame = rows[:, 0].astype(np.int64) - 1
    xyxy = (
        np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]])
        * scale
    )
    cover = np.zeros(len(rows))
    for f in np.unique(frame):  # per frame: largest share of a box covered by another box
        idx = np.flatnonzero(frame == f)
        b = xyxy[idx]
        iw = np.clip(
            np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]),
            0,
            None,
        )
        ih = np.clip(
            np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]),
            0,
            None,
        )
        area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
        inter = iw * ih
        np.fill_diagonal(inter, 0.0)
        cover[idx] = (inter / area[:, None]).max(axis=1) if len(idx) > 1 else 0.0
    w, h = frame_size
    step = max(1, round(step_s * fps))
    keep = (
        (xyxy[:, 0] >= 0) & (xyxy[:, 1] >= 0) & (xyxy[:, 2] <= w) & (xyxy[:, 3] <= h)
        & (xyxy[:, 3] - xyxy[:, 1] >= min_height) & (cover <= max_cover) & (frame % step == 0)
    )  # fmt: skip
    return {
        "frame": frame[keep],
        "pid": rows[keep, 1].astype(np.int64),
        "xyxy": xyxy[keep].astype(np.float32),
        "time": frame[keep] / fps,
    }


def windowed_rank(distmat: np.ndarray, pids: np.ndarray, times: np.ndarray, gap_s: float) -> dict:
    """Every crop against every crop, ignoring own-identity crops closer than ``gap_s`` seconds.

    The Market protocol per query (see the module docstring for the "camera" trick); returns
    ``mAP``, ``rank1``, ``rank5`` (percent), ``num_query`` (scored) and ``num_gallery``.
    """
    pids, times = np.asarray(pids).reshape(-1), np.asarray(times, np.float64).reshape(-1)
    n = len(pids)
    if distmat.shape != (n, n) or len(times) != n:
        raise ReidTraceError(
            f"distance matrix {distmat.shape} does not match {n} crops", hint="a caller bug"
        )
    if not gap_s > 0:
        raise ReidTraceError(f"the time gap must be > 0 s, got {gap_s}", hint="try 2")
    aps, r1, r5 = [], [], []
    for i in range(n):
        near = np.abs(times - times[i]) < gap_s
        g_cam = np.where(near, 0, 1)
        if not ((pids == pids[i]) & ~near).any():
            continue  # nobody to find: not scored, as in Market
        res = evaluate_rank(distmat[i : i + 1], pids[i : i + 1], pids, np.zeros(1, int), g_cam)
        aps.append(res.mAP)
        r1.append(res.rank1)
        r5.append(res.rank5)
    if not aps:
        raise ReidTraceError(
            f"no crop has a crop of the same person {gap_s} s or more away",
            hint="use a shorter --gap or longer footage",
        )
    return {
        "mAP": round(100.0 * float(np.mean(aps)), 2),
        "rank1": round(100.0 * float(np.mean(r1)), 2),
        "rank5": round(100.0 * float(np.mean(r5)), 2),
        "num_query": len(aps),
        "num_gallery": n,
    }


def cut_mot_crops(seq: MotTruth, table: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The image crop of every row of a :func:`mot_crop_table` (frames read once, in order)."""
    frames = read_frames_at(seq.video, np.unique(table["frame"]))
    crops = []
    for f, box in zip(table["frame"], table["xyxy"], strict=True):
        img = frames.get(int(f))
        if img is None:
            raise ReidTraceError(
                f"{seq.video} has no frame {int(f) + 1}", hint="is the footage complete?"
            )
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        crops.append(img[y1:y2, x1:x2])
    return crops


def embed_mot_crops(
    seq: MotTruth, embedders: Sequence[OnnxEmbedder], **crop_kwargs: float
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The crop table of ``seq`` and each embedder's (n, D) features of those crops."""
    cap = cv2.VideoCapture(str(seq.video))
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    if min(size) <= 0:
        raise ReidTraceError(f"OpenCV cannot open {seq.video}", hint="is the footage complete?")
    gt = np.loadtxt(seq.gt, delimiter=",", ndmin=2)
    table = mot_crop_table(
        gt, frame_size=size, fps=seq.fps, scale=seq.scale, last_frame=seq.last_frame, **crop_kwargs
    )
    crops = cut_mot_crops(seq, table)
    return table, [e.embed_crops(crops) for e in embedders]


def cross_time_scores(table: dict[str, np.ndarray], feats: np.ndarray, gap_s: float) -> dict:
    """``windowed_rank`` of one model's features of a crop table."""
    return windowed_rank(cosine_distmat(feats, feats), table["pid"], table["time"], gap_s)


# --- Market folders and test-time transforms ---------------------------------------------------
def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _standardise(img: np.ndarray) -> np.ndarray:
    """Per image and channel: zero mean, unit std, mapped back to mean 128 / std 48 (grey world)."""
    x = img.astype(np.float32)
    x = (x - x.mean(axis=(0, 1))) / (x.std(axis=(0, 1)) + 1e-6) * 48.0 + 128.0
    return np.clip(x, 0, 255).astype(np.uint8)


def _equalise(img: np.ndarray) -> np.ndarray:
    """Histogram equalisation of the luma only (colours kept)."""
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycc[..., 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)


def _down_up(h: int, w: int) -> Transform:
    def f(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

    return f


def _pad_to_half(img: np.ndarray) -> np.ndarray:
    """Pad the sides with the border colour to the 1:2 width:height of the model's input."""
    h, w = img.shape[:2]
    extra = max(0, h // 2 - w)
    return cv2.copyMakeBorder(img, 0, 0, extra // 2, extra - extra // 2, cv2.BORDER_REPLICATE)


TRANSFORMS: dict[str, Transform | None] = {
    "none": None,
    "downscale to 128x64 (synthetic crop size)": _down_up(128, 64),
    "downscale to 64x32": _down_up(64, 32),
    "pad width to 1:2 (no stretch)": _pad_to_half,
    "grayscale": _gray,
    "per-image colour standardisation": _standardise,
    "luma histogram equalisation": _equalise,
    "gaussian blur sigma 1": lambda im: cv2.GaussianBlur(im, (0, 0), 1.0),
    "gaussian blur sigma 2": lambda im: cv2.GaussianBlur(im, (0, 0), 2.0),
    "horizontal flip": lambda im: np.ascontiguousarray(im[:, ::-1]),
}
"""Test-time changes for the gap analysis, applied to query and gallery crops alike."""


def market_scores(
    data_dir: str | Path,
    embedder: OnnxEmbedder,
    *,
    transform: Transform | None = None,
    progress: Progress | None = None,
    stage: str = "embedding",
) -> dict:
    """Market-protocol scores of ``embedder`` on a Market folder (query vs bounding_box_test).

    Without ``transform`` this gives the numbers of ``reidtrace evaluate --data DIR --model M``.
    """
    data = read_market(data_dir, require_train=False)
    images = data.query + data.gallery
    if transform is None:
        feats = embedder.embed_paths([im.path for im in images], progress=progress, stage=stage)
    else:
        chunks = []
        size = 256
        for lo in range(0, len(images), size):
            crops = [transform(read_image(im.path)) for im in images[lo : lo + size]]
            chunks.append(embedder.embed_crops(crops))
            if progress:
                progress(stage, min(lo + size, len(images)), len(images))
        feats = np.concatenate(chunks)
    nq = len(data.query)
    q_pids, q_cams = data.arrays("query")
    g_pids, g_cams = data.arrays("gallery")
    res = evaluate_rank(cosine_distmat(feats[:nq], feats[nq:]), q_pids, g_pids, q_cams, g_cams)
    out = res.as_percent()
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}


# --- the bench -----------------------------------------------------------------------------------
def bench_reid_domains(
    models: dict[str, Path],
    *,
    synthetic: Path | None,
    shared: Path = SHARED_DATA,
    gap_s: float = 2.0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """One row per model: synthetic hold-out, CUHK01 and cross-time retrieval on each real
    sequence (``{"skipped": reason}`` for data that is not there). ``models`` maps a row name
    to an ONNX file; ``synthetic`` is a Market folder of held-out rendered identities."""
    if not models:
        raise ReidTraceError("no model to benchmark", hint="e.g. --models default,imagenet")
    if synthetic is not None and not Path(synthetic).is_dir():
        raise ReidTraceError(
            f"synthetic hold-out {str(synthetic)!r} is not a folder",
            hint="render it: reidtrace synth DIR --crops-only --identities 750 --seed 202, "
            "then pass DIR/market",
        )
    embedders = {name: OnnxEmbedder(path, threads=threads) for name, path in models.items()}
    rows: dict[str, dict] = {
        name: {"model": str(e.path), "model_id": e.model_id} for name, e in embedders.items()
    }
    for name, emb in embedders.items():
        if synthetic is None:
            rows[name]["synthetic"] = {"skipped": "no synthetic hold-out given (--synthetic)"}
        else:
            rows[name]["synthetic"] = market_scores(
                synthetic, emb, progress=progress, stage=f"{name}: synthetic"
            )
        cuhk = shared / CUHK01.relative_to(SHARED_DATA)
        rows[name]["cuhk01"] = (
            market_scores(cuhk, emb, progress=progress, stage=f"{name}: CUHK01")
            if cuhk.is_dir()
            else {"skipped": f"{cuhk} is not there"}
        )
    for seq_name, seq in mot_sequences(shared).items():
        if isinstance(seq, str):
            for name in rows:
                rows[name][seq_name] = {"skipped": seq}
            continue
        if progress:
            progress(f"cross-time: {seq_name}", 0, 1)
        table, feats = embed_mot_crops(seq, list(embedders.values()))
        for name, f in zip(embedders, feats, strict=True):
            rows[name][seq_name] = {**cross_time_scores(table, f, gap_s), "gap_s": gap_s}
    return rows


def gap_analysis(
    data_dir: Path,
    model: Path,
    *,
    transforms: Sequence[str] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """Market scores of ``model`` on ``data_dir`` under each test-time transform (one row each)."""
    names = list(TRANSFORMS) if transforms is None else list(transforms)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ReidTraceError(
            f"unknown transform(s): {', '.join(unknown)}", hint=f"choose from {list(TRANSFORMS)}"
        )
    emb = OnnxEmbedder(model, threads=threads)
    return {
        n: market_scores(data_dir, emb, transform=TRANSFORMS[n], progress=progress, stage=n)
        for n in names
    }
