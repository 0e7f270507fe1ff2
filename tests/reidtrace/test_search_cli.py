"""``reidtrace search`` and ``reidtrace evaluate-search`` on a tiny ingested Market gallery."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli_helpers import one_line_error, run

PERSON_KEYS = {"box_index", "box", "confidence", "hits"}
HIT_KEYS = {
    "track_id",
    "camera",
    "video_id",
    "start",
    "end",
    "score",
    "mean_score",
    "num_hits",
    "num_sightings",
    "sighting_id",
    "frame_idx",
    "thumbnail",
}
DOC_KEYS = {"query", "model", "kind", "top_k", "rerank", "rank_by", "filters", "people"}


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Path) -> tuple[Path, Path]:
    """(market folder, home): 6 identities x 3 cameras x 3 crops, gallery ingested into home."""
    from indexer.ingest import IngestConfig, ingest
    from indexer.settings import IndexSettings
    from reid.synth.crops import CropsConfig, generate_crops

    root = tmp_path_factory.mktemp("search_cli")
    cfg = CropsConfig(seed=1, cameras=3, identities=6, images_per_camera=3)
    generate_crops(root / "m", cfg, workers=1)
    home = root / "home"
    home.mkdir()
    report = ingest(
        [root / "m" / "market"],
        db_url=f"sqlite:///{home / 'reidtrace.db'}",
        index_path=home / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(embedder_path=str(tiny_embedder)),
        market_split="gallery",
    )
    assert report.ok
    return root / "m" / "market", home


@pytest.fixture
def env(gallery: tuple[Path, Path], tiny_embedder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings pointing at the ingested gallery and its model; returns a query crop."""
    folder, home = gallery
    monkeypatch.setenv("REIDTRACE_HOME", str(home))
    monkeypatch.setenv("REIDTRACE_REID_MODEL", str(tiny_embedder))
    return sorted((folder / "query").iterdir())[0]


def test_json_is_one_document_with_stable_keys(env: Path, tmp_path: Path, capsys) -> None:
    thumbs = tmp_path / "thumbs"
    argv = ["search", str(env), "--crop", "--top-k", "3", "--json", "--thumbnails", str(thumbs)]
    code, out, _ = run(argv, capsys)
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == DOC_KEYS and doc["kind"] == "crop" and doc["model"].startswith("tiny")
    assert doc["filters"] == {"cameras": [], "from": None, "to": None}
    (person,) = doc["people"]
    assert set(person) == PERSON_KEYS and len(person["hits"]) == 3
    for hit in person["hits"]:
        assert set(hit) == HIT_KEYS
        assert Path(hit["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"  # the crop's own JPEG
    scores = [h["mean_score"] for h in person["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_table_and_filters(env: Path, capsys) -> None:
    code, out, _ = run(["search", str(env), "--crop", "--top-k", "2"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("person crop") and lines[1].startswith("rank")
    assert len(lines) == 4
    cam = lines[2].split()[4]
    code, out, _ = run(["search", str(env), "--crop", "--camera", cam, "--json"], capsys)
    hits = json.loads(out)["people"][0]["hits"]
    assert code == 0 and hits and {h["camera"] for h in hits} == {cam}
    window = ["--from", "1990-01-01T00:00:00", "--to", "1990-01-02T00:00:00"]
    code, out, _ = run(["search", str(env), "--crop", "--json", *window], capsys)
    assert code == 0 and json.loads(out)["people"][0]["hits"] == []  # nothing in 1990


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--camera", "nowhere"], "unknown camera 'nowhere'"),
        (["--from", "2001-01-02", "--to", "2001-01-01"], "ends before it starts"),
        (["--from", "soon"], "not an ISO-8601"),
        (["--top-k", "0"], "--top-k must be >= 1"),
        (["--box", "-1"], "--box must be >= 0"),
        (["--box", "3"], "person crop"),
        (["--model", "default"], "not comparable"),
        (["--rank-by", "median"], "unknown rank_by"),
    ],
)
def test_bad_input_is_one_line(env: Path, extra: list[str], needle: str, capsys) -> None:
    code, _, err = run(["search", str(env), "--crop", *extra], capsys)
    one_line_error(code, err, needle)


def test_bad_photos_are_one_line(env: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    code, _, err = run(["search", str(bad)], capsys)
    one_line_error(code, err, "not a readable image")
    code, _, err = run(["search", str(tmp_path / "missing.jpg")], capsys)
    one_line_error(code, err, "does not exist")
    blank = tmp_path / "blank.jpg"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    code, _, err = run(["search", str(blank)], capsys)
    one_line_error(code, err, "no person found")


def test_json_error_is_one_document(env: Path, capsys) -> None:
    code, out, _ = run(["search", str(env), "--crop", "--camera", "nowhere", "--json"], capsys)
    assert code == 2 and set(json.loads(out)) == {"error", "hint"}


def test_empty_store_is_one_line(env: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REIDTRACE_HOME", str(tmp_path / "fresh"))
    code, _, err = run(["search", str(env), "--crop"], capsys)
    one_line_error(code, err, "store is empty")


def test_evaluate_search_equals_evaluate(env: Path, gallery: tuple[Path, Path], capsys) -> None:
    code, out, _ = run(["evaluate-search", "--market", str(gallery[0]), "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    for key in ("rank1", "mAP", "num_query", "num_gallery"):
        assert doc["search"][key] == pytest.approx(doc["evaluate"][key], abs=1e-3), key
    code, out, _ = run(["evaluate-search", "--market", str(gallery[0]), "--no-compare"], capsys)
    assert code == 0 and "rank-1" in out and "evaluate" not in out


def test_a_store_of_the_previous_default_is_refused_then_reembedded(
    gallery: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A store embedded by the previous default (the FP32 file, now ``source_fp32.onnx``, same
    identity) meets the INT8 default: search refuses it in one line whose hint names the way
    out (``reidtrace reembed --model default``) and the old model's file; after the re-embed
    the default searches it."""
    from indexer.ingest import IngestConfig, ingest
    from indexer.settings import IndexSettings
    from reid.embed import SOURCE_MODEL, default_model, model_identity

    folder, _ = gallery
    home = tmp_path / "home"
    home.mkdir()
    report = ingest(
        [folder],
        db_url=f"sqlite:///{home / 'reidtrace.db'}",
        index_path=home / "index.faiss",
        index_settings=IndexSettings(),
        cfg=IngestConfig(embedder_path=str(SOURCE_MODEL)),
        market_split="gallery",
    )
    assert report.ok
    monkeypatch.setenv("REIDTRACE_HOME", str(home))
    monkeypatch.delenv("REIDTRACE_REID_MODEL", raising=False)
    query = sorted((folder / "query").iterdir())[0]
    code, _, err = run(["search", str(query), "--crop"], capsys)
    one_line_error(code, err, "not comparable")
    assert "reidtrace reembed --model default" in err and str(SOURCE_MODEL) in err
    code, _, _ = run(["search", str(query), "--crop", "--model", str(SOURCE_MODEL)], capsys)
    assert code == 0  # the old model still reads its store
    code, out, _ = run(["reembed", "--model", "default", "--json"], capsys)
    assert code == 0 and json.loads(out)["model"] == model_identity(default_model())
    code, out, _ = run(["search", str(query), "--crop", "--json"], capsys)
    assert code == 0 and json.loads(out)["people"][0]["hits"]
