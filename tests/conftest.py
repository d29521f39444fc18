"""Shared fixtures: the GPU marker and the read-only reference data in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _shared_dir() -> Path | None:
    env = os.environ.get("VIST3A_SHARED")
    cand = Path(env) if env else REPO.parent / "shared"
    return cand if cand.is_dir() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (or $VIST3A_SHARED); skips when absent (a user's fresh clone)."""
    d = _shared_dir()
    if d is None:
        pytest.skip("../shared (reference data) is not present beside this checkout; set VIST3A_SHARED")
    return d


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids contention on a shared CPU (restored after the test)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)
