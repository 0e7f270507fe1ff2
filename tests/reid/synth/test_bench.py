from reid.synth.bench import bench_synth
from tests.conftest import TINY


def test_bench_reports_both_jobs() -> None:
    report = bench_synth(workers=1, crops_identities=4, world_config=TINY)
    assert report["demo_world"]["frames"] == TINY.num_frames * TINY.cameras
    assert report["crops"]["identities"] == 4 and report["crops"]["images"] > 0
    assert report["demo_world"]["seconds"] > 0 and isinstance(report["crops"]["meets_target"], bool)
