"""Shared helpers of the AnySplat parity tests (not a test module).

The fixtures live in ``../shared/reference/parity`` (see its README): deterministic weights from
``make_weights.py`` and the official model's intermediate tensors on a 3-view 224² input.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import torch


def load_make_weights(shared: Path) -> ModuleType:
    """Import ``shared/reference/parity/make_weights.py`` by path."""
    path = shared / "reference" / "parity" / "make_weights.py"
    spec = importlib.util.spec_from_file_location("vist3a_parity_make_weights", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class LazyStateDict(Mapping):
    """Manifest rows as a mapping whose tensors are generated on access (low peak memory).

    ``prefix`` keeps only keys starting with it and strips it (e.g. ``"encoder.aggregator.patch_embed."``).
    """

    def __init__(self, mw: ModuleType, manifest: Path, prefix: str = "", keep=None) -> None:
        self.mw = mw
        self.rows = {}
        for key, shape, _ in mw.read_manifest(str(manifest)):
            if key.startswith(prefix):
                local = key[len(prefix) :]
                if keep is None or keep(local):
                    self.rows[local] = (key, shape)

    def __getitem__(self, local: str) -> torch.Tensor:
        key, shape = self.rows[local]
        return self.mw.make_tensor(key, shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|x - ref| / max|ref|`` (parity README §7)."""
    x, ref = x.detach().double().cpu(), ref.double()
    assert x.shape == ref.shape, f"shape {list(x.shape)} vs reference {list(ref.shape)}"
    return float((x - ref).abs().max() / ref.abs().max())


def fixture_tensors(shared: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(shared / "reference" / "parity" / "anysplat_io.safetensors"))
