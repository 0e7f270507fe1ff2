from tests.metrics import reference


def test_demo_runs_every_stage_on_a_tiny_world(tmp_path, tiny_embedder) -> None:
    out = reference.run_tiny_demo(tmp_path, tiny_embedder)
    assert out["world"]["gt_boxes"] > 0
    assert out["ingest"]["done"] == 2 and out["ingest"]["sightings"] > 0
    assert out["index_ok"] and not out["ingest_errors"]
    assert {"mota", "idf1", "id_switches", "per_camera"} <= set(out["tracking"])
    assert (tmp_path / "demo" / "preview.png").is_file()
    # the ReID and tracking numbers against tests/metrics/reference.toml (fails if they move)
    reference.check(reference.read_table(), reference.tiny_demo_sections(out))
