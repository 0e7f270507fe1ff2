from reidtrace.demo import run_demo
from tests.conftest import TINY


def test_demo_runs_every_stage_on_a_tiny_world(tmp_path, tiny_embedder) -> None:
    out = run_demo(tmp_path / "demo", workers=1, model=str(tiny_embedder), world_config=TINY)
    assert out["world"]["gt_boxes"] > 0
    assert 0 <= out["reid"]["mAP"] <= 100 and out["reid"]["num_query"] > 0
    assert out["ingest"]["done"] == 2 and out["ingest"]["sightings"] > 0
    assert out["index_ok"] and not out["ingest_errors"]
    assert {"mota", "idf1", "id_switches", "per_camera"} <= set(out["tracking"])
    assert (tmp_path / "demo" / "preview.png").is_file()
