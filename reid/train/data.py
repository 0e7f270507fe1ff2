"""Training data: Market train split -> PK batches of augmented crops.

Augmentation is the bag-of-tricks list, with torchvision ``transforms.v2`` on uint8 tensors
decoded by OpenCV: resize to the model's input, random horizontal flip, pad 10 + random crop,
scale to [0, 1], normalise, random erasing (p=0.5; erased pixels become the mean colour).
Optional domain augmentations (:class:`~reid.train.config.DomainAugment`, all off by default)
come right after the resize, on uint8: colour jitter, camera response (per-channel gain and
gamma), grayscale, gaussian blur, low resolution (down, then back up).
Batches hold P identities x K images (torchreid's ``RandomIdentitySampler``), which the
batch-hard triplet loss needs.

On a 2-core CPU the loader's workers and the model's intra-op threads compete for the same
cores; :func:`default_threads` encodes what measured fastest there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import cv2
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2

from reid.data.market import MarketImage
from reid.errors import ReidTraceError
from reid.models.features import read_rgb
from reid.models.info import ModelInfo
from reid.models.torchreid_zoo import RandomIdentitySampler
from reid.train.config import DomainAugment

__all__ = [
    "CameraResponse",
    "EpochSampler",
    "TrainImages",
    "default_threads",
    "domain_transforms",
    "make_loader",
    "train_transform",
]


class CameraResponse(v2.Transform):
    """Random per-channel gain (white balance) and gamma (tone curve) of a uint8 RGB image.

    Hand-written: torchvision has brightness/contrast/saturation/hue jitter but nothing that
    scales the three channels independently, which is what two cameras' white balance does.
    ``strength`` s draws gains in [1-s, 1+s] and a gamma in [1/(1+s), 1+s] (log-uniform).
    """

    def __init__(self, strength: float) -> None:
        super().__init__()
        if not 0 <= strength < 1:
            raise ValueError(f"camera response strength must be in [0, 1), got {strength}")
        self.strength = float(strength)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        s = self.strength
        gains = 1.0 + (torch.rand(3) * 2 - 1) * s
        gamma = float(torch.exp((torch.rand(()) * 2 - 1) * torch.log1p(torch.tensor(s))))
        return {"gains": gains, "gamma": gamma}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, torch.Tensor) or inpt.dtype != torch.uint8 or inpt.ndim < 3:
            return inpt
        x = (inpt.float() / 255.0).pow(params["gamma"])
        x = x * params["gains"].view(3, 1, 1)
        return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def domain_transforms(aug: DomainAugment, size: tuple[int, int]) -> list[v2.Transform]:
    """The enabled domain augmentations, for uint8 CHW images already at ``size`` (h, w)."""
    h, w = size
    out: list[v2.Transform] = []
    if aug.color_jitter > 0:
        s = aug.color_jitter
        jitter = v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(s / 6, 0.05))
        out.append(v2.RandomApply([jitter], p=0.8))
    if aug.camera_response > 0:
        out.append(CameraResponse(aug.camera_response))
    if aug.grayscale > 0:
        out.append(v2.RandomGrayscale(p=aug.grayscale))  # keeps 3 channels
    if aug.blur > 0:
        scale = h / 256  # sigma in pixels of a 256x128 input
        kernel = 2 * int(math.ceil(3 * 1.5 * scale)) + 1
        blur = v2.GaussianBlur(kernel, sigma=(0.3 * scale, 1.5 * scale))
        out.append(v2.RandomApply([blur], p=aug.blur))
    if aug.low_res > 0:
        shrink = v2.RandomResize(max(4, int(0.3 * w)), w, antialias=True)  # shorter side = w
        out.append(v2.RandomApply([shrink, v2.Resize((h, w), antialias=True)], p=aug.low_res))
    return out


def train_transform(info: ModelInfo, augment: DomainAugment | None = None) -> v2.Compose:
    """The training augmentation for a model's input size and mean/std, plus ``augment``."""
    h, w = info.input_size
    return v2.Compose(
        [
            v2.Resize((h, w), antialias=True),
            *domain_transforms(augment or DomainAugment(), (h, w)),
            v2.RandomHorizontalFlip(p=0.5),
            v2.Pad(10),
            v2.RandomCrop((h, w)),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(info.mean), std=list(info.std)),
            v2.RandomErasing(p=0.5, value=0.0),  # 0 after Normalize = the mean colour
        ]
    )


class TrainImages(Dataset):
    """``(image, label, camid)`` with labels 0..C-1; ``items`` work with torchreid's samplers."""

    def __init__(self, images: Sequence[MarketImage], transform: Any) -> None:
        keep = [im for im in images if im.pid > 0]  # 0 = distractor, -1 = junk: not identities
        pids = sorted({im.pid for im in keep})
        self.pid_to_label = {pid: i for i, pid in enumerate(pids)}
        self.items = [(str(im.path), self.pid_to_label[im.pid], im.camid) for im in keep]
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.pid_to_label)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        path, label, camid = self.items[i]
        img = torch.from_numpy(read_rgb(path)).permute(2, 0, 1)  # HWC uint8 -> CHW
        return self.transform(img), label, camid


class EpochSampler(Sampler[int]):
    """Draws one epoch of PK indices up front, whole batches only, optionally capped.

    Drawing ahead (``plan``) gives the exact number of batches for progress bars and the
    learning-rate schedule; torchreid's sampler only estimates its length.
    """

    def __init__(self, base: Sampler[int], batch_size: int, limit: int | None = None) -> None:
        self.base = base
        self.batch_size = batch_size
        self.limit = limit
        self._next: list[int] | None = None

    def plan(self) -> int:
        """Draw the next epoch's indices now; returns its number of batches."""
        idx = list(iter(self.base))
        n = len(idx) // self.batch_size * self.batch_size
        if self.limit is not None:
            n = min(n, max(self.batch_size, self.limit // self.batch_size * self.batch_size))
        self._next = idx[:n]
        return n // self.batch_size

    def __iter__(self) -> Iterator[int]:
        if self._next is None:
            self.plan()
        idx, self._next = self._next or [], None
        return iter(idx)

    def __len__(self) -> int:
        if self._next is None:
            self.plan()
        return len(self._next or [])


def default_threads(device: torch.device) -> tuple[int, int]:
    """``(loader workers, torch intra-op threads)`` when the config leaves them unset.

    CPU: one worker decodes and augments (~1000 crops/s per core, several times what the model
    consumes) and the model keeps the other cores. On the shared 2-core machine one torch thread
    measured fastest and, above all, steady: OpenMP's two threads wait on each other at every
    one of OSNet's ~200 small ops whenever another process holds a core, and fell to 20-60
    images/s where one thread held 120-210. CUDA: the GPU does the math, every core decodes.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = max(1, cores or 1)
    if device.type == "cuda":
        return min(8, cores), min(4, cores)
    if cores <= 2:
        return 1, 1
    workers = max(1, cores // 4)
    return workers, cores - workers


def _worker_init(_: int) -> None:
    # each worker is one decoding thread: nested OpenCV/torch pools would oversubscribe the cores
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(
    dataset: TrainImages,
    *,
    batch_size: int,
    num_instances: int,
    workers: int,
    seed: int,
    limit: int | None = None,
    pin_memory: bool = False,
) -> tuple[DataLoader, EpochSampler]:
    """A PK DataLoader over ``dataset`` and its sampler (call ``sampler.plan()`` per epoch)."""
    p = batch_size // num_instances
    ids = dataset.num_classes
    if ids < p:
        raise ReidTraceError(
            f"the training split has {ids} identities, but a batch of {batch_size} with "
            f"{num_instances} images each needs {p}",
            hint=f"use --batch-size {max(2, ids) * num_instances} or fewer, or more identities",
        )
    base = RandomIdentitySampler(dataset.items, batch_size, num_instances)
    sampler = EpochSampler(base, batch_size, limit)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=pin_memory,
        drop_last=True,
    )
    return loader, sampler
