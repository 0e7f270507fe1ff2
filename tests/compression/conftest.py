"""Networks in these tests run on one torch thread (see tests/torch_threads.py)."""

from tests.torch_threads import _one_torch_thread  # noqa: F401  (autouse fixture)
