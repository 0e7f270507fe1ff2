"""Networks in these tests run on one torch thread (see tests/torch_threads.py)."""

import pytest

from tests.torch_threads import _one_torch_thread  # noqa: F401  (autouse fixture)


@pytest.fixture(scope="session")
def tiny_market(tmp_path_factory: pytest.TempPathFactory):
    """16 identities x 3 cameras x 8 crops: 8 training identities, ~6 PK batches of 16."""
    from reid.synth.crops import CropsConfig, generate_crops

    out = tmp_path_factory.mktemp("crops")
    cfg = CropsConfig(seed=0, cameras=3, identities=16, images_per_camera=8)
    generate_crops(out, cfg, workers=1)
    return out / "market"
