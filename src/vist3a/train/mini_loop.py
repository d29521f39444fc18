"""The shared loop of the mini-model trainers (:mod:`vist3a.train.mini_vae`, :mod:`vist3a.train.mini_recon`).

A *task* owns the model, turns world scenes into a loss and evaluates held-out scenes; this loop
does the rest: AdamW under a cosine schedule with linear warm-up, gradient-norm clipping, an
optional EMA, tensorboard scalars, held-out evaluation every ``eval_every`` steps, atomic
checkpoints (:class:`~vist3a.train.checkpoint.CheckpointManager`) and a wall-clock budget
(``minutes``) after which it checkpoints and returns, so a run can be cut into pieces of a few
minutes each and resumed.

Exact resume: the scenes of step ``s`` are a pure function of ``(seed, s)`` (a per-epoch
permutation of the training set; :class:`~vist3a.world.dataset.WorldDataset` renders scene ``i``
deterministically), every random draw of a step uses a generator seeded by ``(seed, s)``, and the
model, optimizer, scheduler, EMA, loss history and the global RNGs are in the checkpoint. So
stopping and resuming reproduces the uninterrupted loss list exactly (same hardware).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from vist3a.errors import InputError
from vist3a.train import HELD_OUT_OFFSET
from vist3a.train.checkpoint import CheckpointManager
from vist3a.train.ema import EMA
from vist3a.train.logger import RunLogger

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


@dataclass
class MiniTrainConfig:
    """Settings of one mini-model run.

    Attributes:
        out: run folder (``checkpoints/``, ``tb/``, ``metrics.json`` and the exported model).
        steps: optimizer steps in total.
        batch: scenes per step.
        lr, weight_decay, warmup: AdamW settings and linear warm-up steps of the cosine schedule.
        grad_clip: gradient-norm clip (``<= 0``: off).
        ckpt_every: checkpoint period in steps (also at the last step and when the budget runs out).
        eval_every: held-out evaluation period in steps (``0``: only at the end).
        keep: checkpoints kept.
        seed: seed of the data order and of every random draw of a step.
        train_scenes, eval_scenes: sizes of the training set (world seed ``seed``) and of the
            held-out set (world seed ``seed + 7919``, disjoint scenes).
        frames, size: views per scene and square image side.
        max_objects, shadows: world settings.
        minutes: wall-clock budget of this invocation (``<= 0``: none); the loop checkpoints and stops
            after the first step past it.
        ema: EMA decay (``0``: off); the export uses the EMA weights.
        bf16: bf16 autocast on CUDA.
        wandb_project: also log to wandb.
    """

    out: Path
    steps: int
    batch: int = 4
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup: int = 200
    grad_clip: float = 1.0
    ckpt_every: int = 500
    eval_every: int = 500
    keep: int = 2
    seed: int = 0
    train_scenes: int = 100_000
    eval_scenes: int = 16
    frames: int = 13
    size: int = 256
    max_objects: int = 4
    shadows: bool = True
    minutes: float = 0.0
    ema: float = 0.0
    bf16: bool = True
    wandb_project: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if self.batch < 1 or self.batch > self.train_scenes:
            raise InputError(f"--batch must be in 1..train_scenes ({self.train_scenes}), got {self.batch}")
        if self.lr <= 0 or self.warmup < 0:
            raise InputError(f"need --lr > 0 and --warmup >= 0, got {self.lr}, {self.warmup}")
        if self.ckpt_every < 1 or self.eval_every < 0 or self.eval_scenes < 1:
            raise InputError("need --ckpt-every >= 1, --eval-every >= 0 and --eval-scenes >= 1")
        if not 0.0 <= self.ema < 1.0:
            raise InputError(f"--ema must be in [0, 1), got {self.ema}")

    @property
    def eval_seed(self) -> int:
        return self.seed + HELD_OUT_OFFSET

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


class MiniTask(Protocol):
    """What a stage provides to :func:`run_loop`."""

    name: str
    model: nn.Module  # the trained module (all its parameters with requires_grad are optimised)

    def loss(self, indices: list[int], step: int, autocast: contextlib.AbstractContextManager) -> dict[str, torch.Tensor]:
        """Loss terms (``"total"`` included) of training scenes ``indices`` at step ``step``."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics (model in eval mode, no gradients)."""
        ...

    def export(self, out: Path) -> dict[str, Any]:
        """Write the final model under ``out``; returns what to record in ``metrics.json``."""
        ...


@dataclass
class MiniResult:
    """``losses``: total loss per step of the whole run; ``evals``: ``(step, metrics)``; ``step``: steps done;
    ``finished``: the run reached ``steps`` (and exported); ``checkpoint``: the last checkpoint written."""

    losses: list[float]
    evals: list[tuple[int, dict[str, float]]]
    step: int
    finished: bool
    checkpoint: Path | None = None


def option_flag(value: Any) -> bool:
    """A stage option's on/off value as given in Python or by ``--set KEY=VALUE`` (``1``, ``true``, ...)."""
    return value in (True, 1, "1", "true", "True")


def option_count(value: Any) -> int | None:
    """A stage option's whole number ``>= 0`` (Python or ``--set``), or None when it is not one."""
    return int(value) if str(value).isdigit() else None


def mix_seed(seed: int, step: int, salt: int) -> int:
    """A seed for draw ``salt`` of step ``step`` (independent of batching and resumption)."""
    return (int(seed) * 1_000_003 + int(step) * 7919 + int(salt) * 104_729) % (2**63 - 1)


def step_indices(n: int, batch: int, seed: int, step: int) -> list[int]:
    """Training-scene indices of step ``step`` (0-based): a per-epoch permutation drawn from ``seed + epoch``."""
    per_epoch = n // batch
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return perm[pos * batch : (pos + 1) * batch].tolist()



def run_loop(
    task: MiniTask,
    config: MiniTrainConfig,
    device: torch.device,
    resume: str | Path | bool | None = False,
    stop_after: int | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> MiniResult:
    """Train ``task.model`` for ``config.steps`` steps (or continue a run), see the module docstring.

    Args:
        resume: False = fresh (refuses a folder holding checkpoints); True = the latest checkpoint;
            or a checkpoint file / folder.
        stop_after: checkpoint and return after this step (as if killed); tests use it.
        clock: seconds, for the ``minutes`` budget (tests pass a fake one).
    """
    from tqdm import tqdm
    from transformers import get_cosine_schedule_with_warmup

    config.check()
    out = Path(config.out)
    ckpt = CheckpointManager(out / CHECKPOINT_DIR, keep=config.keep)
    model = task.model
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError(f"{task.name}: the model has nothing to train")
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, config.warmup, config.steps)
    ema = EMA(model, config.ema) if config.ema > 0 else None
    history: list[float] = []
    evals: list[tuple[int, dict[str, float]]] = []
    start = 0
    state = ckpt.resume(resume)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        history = [float(x) for x in state["history"]]
        evals = [(int(s), {k: float(v) for k, v in m.items()}) for s, m in state.get("evals", [])]
        start = int(state["step"])
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if config.bf16 and device.type == "cuda" else contextlib.nullcontext()
    )
    logger = RunLogger(out, wandb_project=config.wandb_project, config=config.to_json())
    deadline = clock() + config.minutes * 60.0 if config.minutes > 0 else None
    bar = tqdm(total=config.steps, initial=start, desc=f"train {task.name}", unit="step", disable=not progress)
    step, last_ckpt = start, None

    def save() -> Path:
        return ckpt.save(step, {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            **({"ema": ema.state_dict()} if ema is not None else {}),
            "history": list(history),
            "evals": [[s, dict(m)] for s, m in evals],
            "config": {k: v for k, v in config.to_json().items() if k != "extra"},
        })  # fmt: skip

    try:
        while step < config.steps:
            model.train()
            indices = step_indices(config.train_scenes, config.batch, config.seed, step)
            terms = task.loss(indices, step, autocast)
            loss = terms["total"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step + 1}: {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.grad_clip))
            else:
                grad_norm = float(torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None)))
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            step += 1
            history.append(float(loss.detach()))
            scalars = {f"loss/{k}": float(v.detach()) for k, v in terms.items()}
            logger.scalars(step, {**scalars, "lr": sched.get_last_lr()[0], "grad_norm": grad_norm})
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4g}")
            if config.eval_every and step % config.eval_every == 0 and step < config.steps:
                metrics = _evaluate(task, ema)
                evals.append((step, metrics))
                logger.scalars(step, {f"eval/{k}": v for k, v in metrics.items()})
            out_of_time = deadline is not None and clock() >= deadline
            stop = stop_after is not None and step >= stop_after
            if step % config.ckpt_every == 0 or step == config.steps or out_of_time or stop:
                last_ckpt = save()
            if (out_of_time or stop) and step < config.steps:
                if out_of_time:
                    log.info("time budget of %.1f min used: stopped at step %d (resume with --resume)", config.minutes, step)
                    # the weights so far are exported too, so a piece that is never resumed still leaves a model
                    _finish(task, config, ema, history, evals, step, finished=False)
                return MiniResult(history, evals, step, finished=False, checkpoint=last_ckpt)
    finally:
        bar.close()
        logger.close()
    _finish(task, config, ema, history, evals, step, finished=True)
    return MiniResult(history, evals, step, finished=True, checkpoint=last_ckpt)


def _finish(
    task: MiniTask,
    config: MiniTrainConfig,
    ema: EMA | None,
    history: list[float],
    evals: list[tuple[int, dict[str, float]]],
    step: int,
    finished: bool,
) -> None:
    """Evaluate, export (EMA weights when there are any) and write ``metrics.json``.

    A run stopped by its time budget (``finished=False``) exports without touching the training
    weights, so resuming from the checkpoint is unaffected.
    """
    import json

    from vist3a.io_utils import atomic_write_text

    model = task.model
    metrics = _evaluate(task, ema)
    if not evals or evals[-1][0] != step:
        evals.append((step, metrics))
    if ema is None:
        exported = task.export(Path(config.out))
    elif finished:  # the final model is the EMA
        ema.copy_to(model)
        exported = task.export(Path(config.out))
    else:
        with ema.applied(model):
            exported = task.export(Path(config.out))
    atomic_write_text(Path(config.out) / "metrics.json", json.dumps({
        "stage": task.name, "steps": step, "finished": finished, "final_loss": history[-1] if history else None,
        "eval": metrics, "evals": [{"step": s, **m} for s, m in evals], "export": exported,
        "config": {k: v for k, v in config.to_json().items() if k != "extra"},
    }, indent=1) + "\n")  # fmt: skip


def _evaluate(task: MiniTask, ema: EMA | None) -> dict[str, float]:
    """Held-out metrics, with the EMA weights when there are any (the training weights are put back)."""
    model = task.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), ema.applied(model) if ema is not None else contextlib.nullcontext():
            return task.evaluate()
    finally:
        model.train(was_training)
