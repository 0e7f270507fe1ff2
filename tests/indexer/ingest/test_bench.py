"""``reidtrace bench ingest``: one stream and an archive through the process pool, same world."""

from __future__ import annotations

import pytest

from indexer.ingest.bench import bench_ingest
from reid.errors import ReidTraceError
from tests.conftest import TINY


def test_bench_reports_one_stream_and_an_archive(tmp_path, tiny_embedder) -> None:
    out = bench_ingest(
        detector="oracle", model=str(tiny_embedder), world_config=TINY, pets=None, workers=2
    )
    one, archive = out["synthetic"], out["archive"]
    frames = round(TINY.minutes * 60 * TINY.fps) * TINY.cameras
    for r in (one, archive):
        assert r["frames"] == frames and r["fps"] > 0 and r["detector"] == "oracle"
        assert r["x_realtime"] == pytest.approx(r["fps"] / TINY.fps, rel=0.02)
        assert set(r["stages"]) == {"decode", "detect", "track", "embed", "store"}
        assert sum(r["stages"].values()) == pytest.approx(1.0, abs=0.01)
    assert (archive["videos"], archive["workers"]) == (TINY.cameras, 2)
    assert "skipped" in out["pets"]


def test_bench_rejects_a_bad_worker_count() -> None:
    with pytest.raises(ReidTraceError, match="workers"):
        bench_ingest(workers=-1, pets=None)


def test_bench_refuses_an_unknown_cue_before_rendering_anything() -> None:
    with pytest.raises(ReidTraceError, match="appearance must be one of"):
        bench_ingest(appearance="colour", pets=None, workers=1)
