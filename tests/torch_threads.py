"""One torch thread for tests that run networks (imported by the conftests that need it).

On the shared 2-core machine, torch's default of 2 intra-op threads made small forward passes
10-30x slower whenever another process held a core (the OpenMP threads wait on each other at
every op); one thread is fast and steady. Restored afterwards for other packages.
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
