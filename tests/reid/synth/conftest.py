"""A tiny world rendered once per test session (2 cameras, 8 s): every synth test reads it."""

from pathlib import Path

import pytest

from reid.synth.world import WorldConfig, generate_world

TINY = WorldConfig(seed=6, cameras=2, identities=16, groups=2, minutes=8 / 60, passer_frac=0.2)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world") / "w"
    summary = generate_world(out, TINY, workers=1)
    return out, summary
