"""kill -9 at 10 random moments while ingesting a multi-video folder, then finish: nothing lost,
nothing twice, and the vector index agrees with SQL."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
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
        "nanodet",  # the real default: enough work per run for kills to land mid-way
        "--model",
        str(embedder),
        "--workers",
        "1",
        "--json",
    ]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "REIDTRACE_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}


def _is_partial(home: Path) -> bool:
    """True when the store holds a half-ingested folder (some video not yet done)."""
    db = home / "reidtrace.db"
    if not db.exists():
        return False
    con = sqlite3.connect(db)
    try:
        statuses = [r[0] for r in con.execute("SELECT status FROM video")]
    except sqlite3.OperationalError:
        return False  # killed before the tables existed
    finally:
        con.close()
    return bool(statuses) and (len(statuses) < 3 or any(s != "done" for s in statuses))


def _kill_when_partial(cmd: list[str], home: Path, timeout: float = 120.0) -> tuple[bool, bool]:
    """Start ``cmd``, SIGKILL it the moment the store shows a half-done folder; returns (killed,
    the store is half done)."""
    proc = subprocess.Popen(
        cmd, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    t0 = time.perf_counter()
    killed = False
    try:
        while proc.poll() is None and time.perf_counter() - t0 < timeout:
            if _is_partial(home):
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return killed, _is_partial(home)


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
    t0 = time.perf_counter()
    subprocess.run(_cmd(world, tiny_embedder), env=_env(clean), check=True, capture_output=True)
    t_clean = time.perf_counter() - t0  # start-up + all the work, on this machine, now
    rng = np.random.default_rng(42)
    kills, partial = 0, 0
    for _ in range(10):
        proc = subprocess.Popen(
            _cmd(world, tiny_embedder),
            env=_env(crashed),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # random moments over a clean run's length: during start-up, mid-chunk, mid-commit
        time.sleep(float(rng.uniform(0.2, 1.0)) * t_clean)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        partial += _is_partial(crashed)
    if partial == 0:
        # on a loaded machine the clean run's length can mislead every random moment (all in
        # start-up, or all after the end): then start over and kill once as soon as a video
        # is half done (a folder already ingested in full would only be skipped)
        shutil.rmtree(crashed, ignore_errors=True)
        killed, half_done = _kill_when_partial(_cmd(world, tiny_embedder), crashed)
        kills, partial = kills + killed, partial + half_done
    done = subprocess.run(
        _cmd(world, tiny_embedder), env=_env(crashed), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert kills >= 1 and partial >= 1, "no kill landed mid-ingestion: nothing was tested"
    assert rows(crashed) == rows(clean)  # zero lost, zero duplicated detections and sightings
    engine = make_engine(f"sqlite:///{crashed / 'reidtrace.db'}")
    assert verify_index(engine, crashed / "index.faiss").ok
