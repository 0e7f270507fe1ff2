"""``reidtrace bench synth``: how fast the world renders, against the targets of the product.

Targets (2 CPU cores): the demo world (4 cameras x 2 minutes at 480x360) in under a minute, and a
training set of >= 700 identities / >= 20,000 crops in under 15 minutes. Benchmarks measure;
tests never assert on wall-clock time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reid.synth.crops import CropsConfig, generate_crops
from reid.synth.world import WorldConfig, generate_world

DEMO_TARGET_S = 60.0
CROPS_TARGET_S = 15 * 60.0


def bench_synth(
    *,
    workers: int | None = None,
    crops_identities: int = 750,
    world_config: WorldConfig | None = None,
    variety: str = "none",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Render the demo world and a crops training set in a temporary folder; return timings.

    ``variety`` renders the crops set domain-randomised (``synth --variety``), to time it.
    """
    CropsConfig(variety=variety).validate()  # a bad name fails before minutes of rendering
    with tempfile.TemporaryDirectory(prefix="reidtrace-bench-") as tmp:
        t0 = time.perf_counter()
        world = generate_world(
            Path(tmp) / "demo",
            world_config or WorldConfig(seed=7),
            workers=workers,
            progress=progress,
        )
        demo_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        crops = generate_crops(
            Path(tmp) / "crops",
            CropsConfig(seed=1, identities=crops_identities, cameras=6, variety=variety),
            workers=workers,
            progress=progress,
        )
        crops_s = time.perf_counter() - t0
    frames = world["frames_per_camera"] * len(world["cameras"])
    m = crops["market"]
    n_crops = m["train_images"] + m["query_images"] + m["gallery_images"]
    return {
        "cpu_count": os.cpu_count(),
        "demo_world": {
            "seconds": round(demo_s, 1),
            "frames": frames,
            "frames_per_s": round(frames / demo_s, 1),
            "target_s": DEMO_TARGET_S,
            "meets_target": demo_s < DEMO_TARGET_S,
        },
        "crops": {
            "seconds": round(crops_s, 1),
            "identities": crops["identities"],
            "variety": variety,
            "images": n_crops,
            "images_per_s": round(n_crops / crops_s, 1),
            "target_s": CROPS_TARGET_S,
            "meets_target": crops_s < CROPS_TARGET_S,
        },
    }
