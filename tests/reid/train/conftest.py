"""One torch thread for these tests.

On the shared 2-core machine, torch's default of 2 intra-op threads made these small forward
passes 10-30x slower whenever another process held a core (the OpenMP threads wait on each
other at every op); one thread is fast and steady. Restored afterwards for other packages.
"""

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_market(tmp_path_factory: pytest.TempPathFactory):
    """16 identities x 3 cameras x 8 crops: 8 training identities, ~6 PK batches of 16."""
    from reid.synth.crops import CropsConfig, generate_crops

    out = tmp_path_factory.mktemp("crops")
    cfg = CropsConfig(seed=0, cameras=3, identities=16, images_per_camera=8)
    generate_crops(out, cfg, workers=1)
    return out / "market"
