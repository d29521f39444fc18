"""Exponential moving average of (trainable) parameters."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class EMA:
    """EMA of a module's trainable parameters: ``shadow ← decay·shadow + (1−decay)·param``.

    Args:
        module: the model whose ``requires_grad`` parameters are tracked.
        decay: EMA decay per update.
    """

    def __init__(self, module: torch.nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone().float() for n, p in module.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for n, p in module.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, module: torch.nn.Module) -> None:
        """Write the averaged values into ``module`` (e.g. before export)."""
        for n, p in module.named_parameters():
            if n in self.shadow:
                p.copy_(self.shadow[n].to(p.dtype))

    @contextlib.contextmanager
    def applied(self, module: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """``module`` with the averaged values inside the block; its own values are put back after it."""
        backup = {n: p.detach().clone() for n, p in module.named_parameters() if n in self.shadow}
        self.copy_to(module)
        try:
            yield module
        finally:
            with torch.no_grad():
                for n, p in module.named_parameters():
                    if n in backup:
                        p.copy_(backup[n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}...")
        # checkpoints load on the CPU: each average goes back to the device of the parameter it tracks
        self.shadow = {k: state[k].to(v.device, torch.float32, copy=True) for k, v in self.shadow.items()}
