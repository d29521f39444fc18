"""Scalar logging to tensorboard (always) and wandb (when installed and asked for)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class RunLogger:
    """Writes scalars on the main process only; a no-op elsewhere.

    Args:
        folder: run folder; tensorboard events go to ``folder/tb``.
        enabled: False on non-main ranks.
        wandb_project: log to this wandb project as well (needs the optional ``wandb`` package).
        config: run settings recorded with the run.
    """

    def __init__(self, folder: str | Path, enabled: bool = True, wandb_project: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        self.enabled = enabled
        self._tb = None
        self._wandb = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(Path(folder) / "tb"))
        if wandb_project:
            try:
                import wandb
            except ImportError:
                log.warning("wandb is not installed; logging to tensorboard only")
            else:
                self._wandb = wandb.init(project=wandb_project, config=config or {}, dir=str(folder))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        for k, v in values.items():
            self._tb.add_scalar(k, float(v), step)
        if self._wandb is not None:
            self._wandb.log(values, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
