"""The end-to-end demo on the embedded defaults: every stage, scored against the truth.

1. render the demo world (4 cameras x 2 minutes, seed 7) with its ground truth;
2. evaluate the shipped ReID model on the world's Market-format crops (mAP, rank-1);
3. ingest the four videos with the default detector (the best installed), tracker and embedder
   into a demo store;
4. score the stored tracks against the truth (MOTA, IDF1) and check the index against SQL.

Everything goes under one folder (default ``$REIDTRACE_HOME/demo``), rebuilt on each run, so
the demo never touches the user's own database or index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from indexer.index import verify_index
from indexer.ingest import IngestConfig, ingest
from indexer.ingest.evaluate import evaluate_tracking
from indexer.settings import IndexSettings
from indexer.store.db import make_engine
from reid.embed import default_model, model_identity
from reid.evaluate.run import evaluate_model
from reid.synth.preview import write_preview
from reid.synth.world import WorldConfig, generate_world


def run_demo(
    target: Path,
    *,
    seed: int = 7,
    workers: int | None = None,
    model: str | None = None,
    world_config: WorldConfig | None = None,
    threads: int | None = None,
    models_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Run every stage and return one summary (also what ``reidtrace demo --json`` prints).

    ``threads`` caps ONNX Runtime's threads in evaluation and ingestion (default: one per core);
    the scores are the same either way, but one thread keeps a test beside others on its core.
    The detector is ``auto``: the best one installed in ``models_dir`` (else the bundled NanoDet),
    named in the summary.
    """
    t0 = time.perf_counter()
    world = generate_world(
        target,
        world_config or WorldConfig(seed=seed),
        workers=workers,
        overwrite=True,
        progress=progress,
    )
    world["preview"] = str(write_preview(target))
    t_world = time.perf_counter() - t0
    reid_scores = evaluate_model(target / "market", model, threads=threads, progress=progress)
    db_url = f"sqlite:///{target / 'reidtrace.db'}"
    report = ingest(
        [target],
        db_url=db_url,
        index_path=target / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(
            embedder_path=model,
            threads=threads,
            models_dir=None if models_dir is None else str(models_dir),
        ),
        workers=workers or 2,
        progress=progress,
    ).as_dict()
    tracking = evaluate_tracking(target, db_url=db_url) if report["ok"] else {}
    verify = verify_index(
        make_engine(db_url), target / "index.faiss", model_identity(model or default_model())
    )
    return {
        "world": world,
        "world_seconds": round(t_world, 1),
        "reid": reid_scores,
        "ingest": report["totals"] | {"index_vectors": report["index"].get("count", 0)},
        "detectors": sorted(
            {n for v in report["videos"] for n in v["notes"] if n.startswith("detector")}
        ),
        "ingest_errors": [v["error"] for v in report["videos"] if v["error"]],
        "tracking": tracking,
        "index_ok": verify.ok,
        "seconds": round(time.perf_counter() - t0, 1),
        "folder": str(target),
    }
