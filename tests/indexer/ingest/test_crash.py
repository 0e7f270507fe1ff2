"""kill -9 at 10 random moments while ingesting a multi-video folder, then finish: nothing lost,
nothing twice, and the vector index agrees with SQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from indexer.index import verify_index
from indexer.store.db import make_engine
from tests.indexer.ingest.test_ingest import rows


def _cmd(world: Path, embedder: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "reidtrace",
        "ingest",
        str(world),
        "--detector",
        "oracle",
        "--model",
        str(embedder),
        "--workers",
        "1",
        "--json",
    ]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "REIDTRACE_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}


def test_kill_9_ten_times_then_resume(tiny_world, tmp_path, tiny_embedder) -> None:
    root, _ = tiny_world
    world = tmp_path / "world"
    shutil.copytree(root, world)
    # a third video: the same footage under another camera, so the folder has several videos
    (world / "cam3").mkdir()
    shutil.copy(world / "cam1" / "video.mp4", world / "cam3" / "video.mp4")
    import json

    cams = json.loads((world / "cameras.json").read_text())
    extra = dict(cams["cameras"][0], name="cam3", video="cam3/video.mp4", gt="cam1/gt/gt.txt")
    cams["cameras"].append(extra)
    (world / "cameras.json").write_text(json.dumps(cams))

    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    subprocess.run(_cmd(world, tiny_embedder), env=_env(clean), check=True, capture_output=True)
    rng = np.random.default_rng(42)
    kills = 0
    for _ in range(10):
        proc = subprocess.Popen(
            _cmd(world, tiny_embedder),
            env=_env(crashed),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(float(rng.uniform(1.0, 4.0)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    done = subprocess.run(
        _cmd(world, tiny_embedder), env=_env(crashed), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert kills >= 3, "the runs finished before they could be killed: the test is too fast"
    assert rows(crashed) == rows(clean)  # zero lost, zero duplicated detections and sightings
    engine = make_engine(f"sqlite:///{crashed / 'reidtrace.db'}")
    assert verify_index(engine, crashed / "index.faiss").ok
