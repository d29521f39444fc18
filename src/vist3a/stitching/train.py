"""Paper step 2: fine-tune the stitching layer and LoRA by self-distillation (METHOD.md §3.4-3.5).

One step: draw the frame count (rank 0 draws from the schedule, every rank uses it), keep the first
that many frames of each clip, encode them with the frozen video VAE (a posterior sample), run the
frozen teacher on the same frames at the reconstruction size and the student on the latent, take
the weighted L1 terms (:mod:`vist3a.stitching.distill`), and step AdamW under a cosine schedule with
warm-up, clipping the gradient norm.

Exact resume: every random choice is a pure function of (seed, step) or lives in the checkpoint,

- the clips of step s come from :class:`StepSampler` (a per-epoch permutation, sharded by rank), and
  each clip is loaded under a torch seed fixed by its position in the run (:class:`SeededClips`),
  so a dataset that draws random windows from torch's global RNG draws the same ones again;
- the posterior sample of clip i uses a generator seeded by its position too;
- the frame-count generator, the global RNGs (LoRA dropout), optimizer, scheduler and trainable
  weights are in the checkpoint.

So stopping at a checkpoint and resuming reproduces the uninterrupted loss curve exactly (on the
same hardware and process count).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import InputError
from vist3a.stitching.distill import (
    TERMS,
    DistillTargets,
    DistillWeights,
    distillation_loss,
    object_pixel_weight,
    teacher_targets,
)
from vist3a.stitching.spec import WAN_TIME_FACTOR
from vist3a.stitching.stitched import StitchedDecoder, rgb_branch_input
from vist3a.train import distributed
from vist3a.train.checkpoint import CheckpointManager
from vist3a.train.distributed import DistContext
from vist3a.train.logger import RunLogger

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"


#: What the student's RGB branch may see in training (``TrainConfig.student_rgb``).
STUDENT_RGB: tuple[str, ...] = ("frames", "decoded")


@dataclass
class TrainConfig:
    """Settings of one stitching run (defaults: the released code's, METHOD.md §3.5).

    Attributes:
        out: run folder (checkpoints/, tb/, the final ``stitched.safetensors`` + ``stitched.json``).
        steps: optimizer steps in total.
        lr, weight_decay, warmup: AdamW learning rate and weight decay; linear warm-up steps of the
            cosine schedule (``transformers.get_cosine_schedule_with_warmup``).
        batch: clips per process and step.
        frames: frame counts (each 1+4k) drawn uniformly per step; clips carry ``max(frames)`` frames.
        grad_clip: gradient-norm clip (``<= 0``: off).
        ckpt_every: checkpoint period in steps (and at the last step).
        keep: checkpoints kept.
        seed: seed of the data order, clip loading, posterior samples and frame draws.
        bf16: bf16 autocast on CUDA. grad_checkpointing: recompute DINO/aggregator blocks in backward.
        official_quirk: the official depth-gradient axes (frames, rows) instead of (rows, columns).
        sample_posterior: encode with a posterior sample (official) instead of its mean.
        student_rgb: what the student's RGB branch sees: ``"frames"`` (official: the clip's frames, as the
            teacher) or ``"decoded"`` (the VAE decode of the student's latent, as at generation, where no
            true frames exist; a lossy VAE's colours then have to come from the latent).
        num_workers: DataLoader workers.
        wandb_project: also log to wandb.
        weights: loss weights.
        minutes: wall-clock budget of this invocation (``<= 0``: none); after the first step past it the
            run checkpoints, exports the weights so far and stops (continue with ``--resume``).
        object_weight: weight of object pixels (the world judge's saturated pixels of the teacher's frames) in the
            pixel-aligned terms (1: the paper's plain means; see :mod:`vist3a.stitching.distill`).
    """

    out: Path
    steps: int
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup: int = 500
    batch: int = 1
    frames: tuple[int, ...] = (9, 13, 17, 21)
    grad_clip: float = 1.0
    ckpt_every: int = 1000
    keep: int = 2
    seed: int = 0
    bf16: bool = True
    grad_checkpointing: bool = True
    official_quirk: bool = False
    sample_posterior: bool = True
    student_rgb: str = "frames"
    num_workers: int = 0
    wandb_project: str | None = None
    weights: DistillWeights = field(default_factory=DistillWeights)
    minutes: float = 0.0
    object_weight: float = 1.0

    def check(self) -> None:
        if self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if self.batch < 1:
            raise InputError(f"--batch must be >= 1, got {self.batch}")
        if not self.frames or any(f < 1 or (f - 1) % 4 for f in self.frames):
            raise InputError(f"--frames must be counts of the form 1+4k (e.g. 9,13,17,21), got {list(self.frames)}")
        if self.ckpt_every < 1:
            raise InputError(f"--ckpt-every must be >= 1, got {self.ckpt_every}")
        if self.lr <= 0 or self.warmup < 0:
            raise InputError(f"need --lr > 0 and --warmup >= 0, got {self.lr}, {self.warmup}")
        if not (math.isfinite(self.object_weight) and self.object_weight > 0):
            raise InputError(f"--object-weight must be a finite number > 0, got {self.object_weight}")
        if self.student_rgb not in STUDENT_RGB:
            raise InputError(f"--student-rgb must be one of {', '.join(STUDENT_RGB)}, got {self.student_rgb!r}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["frames"] = list(self.frames)
        return d


def parse_frames(text: str) -> tuple[int, ...]:
    """``"9,13,17,21"`` → ``(9, 13, 17, 21)``."""
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InputError(f"--frames must be comma-separated integers, got {text!r}") from None


# ------------------------------------------------------------------------------------------- data order
class StepSampler(torch.utils.data.Sampler):
    """Dataset indices for steps ``start .. steps-1`` of one process, as ``(index, position)`` pairs.

    Epoch e is a permutation of the dataset drawn from ``seed + e``; each step takes
    ``batch · world_size`` consecutive entries (dropping an incomplete tail) and process r takes
    entries ``r·batch .. (r+1)·batch``. ``position`` is the entry's index in the whole run, so it
    names the clip uniquely (used to seed its loading and its posterior sample).
    """

    def __init__(self, n: int, batch: int, rank: int, world_size: int, seed: int, start: int, steps: int) -> None:
        self.n, self.batch, self.rank, self.world = n, batch, rank, world_size
        self.seed, self.start, self.steps = seed, start, steps
        self.per_step = batch * world_size
        self.steps_per_epoch = n // self.per_step
        if self.steps_per_epoch < 1:
            raise InputError(
                f"the dataset has {n} clips, fewer than one step needs (batch {batch} x {world_size} processes)"
            )

    def __len__(self) -> int:
        return max(0, self.steps - self.start) * self.batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        perm, epoch = None, -1
        for step in range(self.start, self.steps):
            e, pos = divmod(step, self.steps_per_epoch)
            if e != epoch:
                perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + e)).tolist()
                epoch = e
            base = pos * self.per_step + self.rank * self.batch
            for j in range(self.batch):
                yield perm[base + j], step * self.per_step + self.rank * self.batch + j


class SeededClips(torch.utils.data.Dataset):
    """Wraps a clip dataset: item ``(index, position)`` is loaded under torch seed ``f(seed, position)``
    (the global RNG is restored afterwards), so random windows and jitter repeat on resume."""

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        index, position = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, position, 1))
            item = self.dataset[index]
        return {"images": item["images"], "feedforward_images": item.get("feedforward_images"),
                "latents": item.get("latents"), "position": position}  # fmt: skip


def _mix(seed: int, position: int, salt: int) -> int:
    return (int(seed) * 1_000_003 + int(position) * 7919 + salt) % (2**63 - 1)


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    ff = [it["feedforward_images"] for it in items]
    lat = [it.get("latents") for it in items]
    return {
        "images": torch.stack([it["images"] for it in items]),
        "feedforward_images": None if any(f is None for f in ff) else torch.stack(ff),
        "latents": None if any(z is None for z in lat) else torch.stack(lat),
        "position": [int(it["position"]) for it in items],
    }


def clip_inputs(
    batch: dict[str, Any], frames: int, recon_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(video [B, 3, T, S, S] in [-1, 1], recon images [B, T, 3, R, R] in [0, 1])`` of the first ``frames``.

    The reconstruction images are the loader's ``feedforward_images`` when given at ``recon_size``,
    else the same frames resized (antialiased bilinear): the teacher and the student's RGB branch
    see the same pixels.
    """
    images = batch["images"]
    if images.ndim != 5 or images.shape[2] != 3:
        raise InputError(f"clips must be [B, T, 3, H, W], got {list(images.shape)}")
    if images.shape[1] < frames:
        raise InputError(f"clips have {images.shape[1]} frames, the schedule asks for {frames}")
    vae = images[:, :frames].float()
    rec = batch.get("feedforward_images")
    if rec is None or tuple(rec.shape[-2:]) != (recon_size, recon_size):
        b, t = vae.shape[:2]
        rec = F.interpolate(vae.flatten(0, 1), size=(recon_size, recon_size), mode="bilinear", antialias=True)
        rec = rec.view(b, t, 3, recon_size, recon_size)
    else:
        rec = rec[:, :frames].float()
    return vae.permute(0, 2, 1, 3, 4) * 2 - 1, rec.clamp(0, 1)


def stored_latents(latents: torch.Tensor, frames: int, dev: torch.device) -> torch.Tensor:
    """A generated set's raw latents ``[B, C, T', h, w]`` (:mod:`vist3a.stitching.generated`) for a step of
    ``frames`` frames: they were made for their clips' whole length, so the step must use all of it."""
    want = (frames - 1) // WAN_TIME_FACTOR + 1
    if latents.shape[2] != want:
        raise InputError(f"stored latents have {latents.shape[2]} latent frames, a {frames}-frame step needs {want} "
                         "(train a generated set at its own frame count)")  # fmt: skip
    return latents.to(dev, torch.float32)


def decoded_rgb(video: Any, latent: torch.Tensor, recon_size: int) -> torch.Tensor:
    """The RGB branch's input at generation: the VAE decode of raw ``latent [B, C, T', h, w]`` in [0, 1], resized
    as ``TextTo3DPipeline.latents_to_3d`` does (:func:`rgb_branch_input`) to ``[B, T, 3, recon_size, recon_size]``."""
    rgb = ((video.decode(latent).float() + 1.0) / 2.0).clamp(0.0, 1.0).transpose(1, 2)  # [B, T, 3, H, W]
    return rgb_branch_input(rgb, (recon_size, recon_size))


# -------------------------------------------------------------------------------------------- the step
class DistillStep(nn.Module):
    """The student plus its loss, so DDP sees one module whose forward returns tensors."""

    def __init__(self, student: StitchedDecoder, weights: DistillWeights, official_quirk: bool) -> None:
        super().__init__()
        self.student = student
        self.weights = weights
        self.official_quirk = official_quirk

    def forward(
        self, latent: torch.Tensor, images: torch.Tensor, teacher: DistillTargets, pixel_weight: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        out = self.student(latent, images, voxelize=False)
        return distillation_loss(DistillTargets.from_output(out), teacher, self.weights, self.official_quirk, pixel_weight)


def prepare_models(student: StitchedDecoder, teacher: nn.Module, lora: str | None, grad_checkpointing: bool) -> None:
    """Freeze the teacher (voxelisation off), put LoRA on the student if it has none, set checkpointing."""
    teacher.eval().requires_grad_(False)
    if student.lora is None:
        student.requires_grad_(False)
        student.add_lora(lora or "r64,a32,d0.0,f0")
    student.train()
    student.recon.enable_gradient_checkpointing(grad_checkpointing)


def make_teacher(student: StitchedDecoder) -> nn.Module:
    """A frozen copy of the student's reconstruction network, taken before LoRA goes on."""
    if student.lora is not None:
        raise InputError("make the teacher before adding LoRA to the student")
    return copy.deepcopy(student.recon).eval().requires_grad_(False)


@dataclass
class TrainResult:
    """``losses``: total loss per step of the whole run (mean over processes); ``step``: steps done."""

    losses: list[float]
    step: int
    finished: bool


def train_stitched(
    student: StitchedDecoder,
    teacher: nn.Module,
    video: Any,
    dataset: torch.utils.data.Dataset,
    config: TrainConfig,
    ctx: DistContext | None = None,
    recon_size: int | None = None,
    resume: str | Path | bool = False,
    stop_after: int | None = None,
    model_meta: dict[str, Any] | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> TrainResult:
    """Run (or continue) the distillation.

    Args:
        student: the stitched decoder, LoRA already added (see :func:`prepare_models`).
        teacher: the frozen reconstruction network.
        video: an object with ``encode(video [B,3,T,H,W] in [-1,1], sample, generator) -> raw latent``.
        dataset: clips: items with ``images [T, 3, S, S]`` in [0, 1] at the VAE size (T >= max frames),
            optionally ``feedforward_images`` at the reconstruction size.
        ctx: the distributed context (:func:`vist3a.train.distributed.init`); None = one process on
            the student's device.
        recon_size: reconstruction input side (default: the student's token grid × patch).
        resume: False = fresh (refuses a folder holding checkpoints), True = the latest checkpoint in
            ``out/checkpoints``, or a checkpoint path.
        stop_after: stop right after the checkpoint of this step (as if killed); used by tests.
        model_meta: what :func:`vist3a.stitching.export.save_trained` records about the models.
        clock: seconds, for the ``minutes`` budget (tests pass a fake one).
    """
    from tqdm import tqdm
    from transformers import get_cosine_schedule_with_warmup

    config.check()
    dev = student.stitching_layer.weight.device
    ctx = ctx or DistContext(0, 1, 0, dev)
    out = Path(config.out)
    ckpt = CheckpointManager(out / CHECKPOINT_DIR, keep=config.keep)
    recon_size = recon_size or student.image_size

    params = [p for p in student.parameters() if p.requires_grad]
    if not params:
        raise InputError("the student has nothing to train; add LoRA first (prepare_models)")
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = get_cosine_schedule_with_warmup(opt, config.warmup, config.steps)
    frames_rng = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    start = 0

    state = ckpt.resume(resume)
    if state is not None:
        student.load_trainable_state_dict(state["trainable"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        frames_rng.set_state(state["frames_rng"])
        history = [float(x) for x in state["history"]]
        start = int(state["step"])
        if start >= config.steps:
            log.info("checkpoint step %d >= --steps %d: nothing to do", start, config.steps)
    step_module = DistillStep(student, config.weights, config.official_quirk)
    runner: nn.Module = step_module
    if ctx.distributed:
        runner = nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=True)

    sampler = StepSampler(len(dataset), config.batch, ctx.rank, ctx.world_size, config.seed, start, config.steps)
    loader = torch.utils.data.DataLoader(
        SeededClips(dataset, config.seed), batch_size=config.batch, sampler=sampler,
        num_workers=config.num_workers, collate_fn=_collate, drop_last=False,
    )  # fmt: skip
    logger = RunLogger(out, enabled=ctx.is_main, wandb_project=config.wandb_project, config=config.to_json())
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if config.bf16 and dev.type == "cuda"
        else contextlib.nullcontext()
    )
    bar = tqdm(total=config.steps, initial=start, desc="stitch train", unit="step",
               disable=not (progress and ctx.is_main))  # fmt: skip
    deadline = clock() + config.minutes * 60.0 if config.minutes > 0 else None
    step = start
    finished = True
    try:
        for batch in loader:
            frames = _draw_frames(config.frames, frames_rng, ctx)
            batch = {**batch, "images": batch["images"].to(dev, non_blocking=True)}
            if batch["feedforward_images"] is not None:
                batch["feedforward_images"] = batch["feedforward_images"].to(dev, non_blocking=True)
            video_in, rec = clip_inputs(batch, frames, recon_size)
            with torch.no_grad():
                latent = (_encode(video, video_in, batch["position"], config, dev) if batch.get("latents") is None
                          else stored_latents(batch["latents"], frames, dev))  # fmt: skip
                student_rgb = decoded_rgb(video, latent, recon_size) if config.student_rgb == "decoded" else rec
            with autocast:
                target = teacher_targets(teacher, rec)
                terms = runner(latent, student_rgb, target, object_pixel_weight(rec, config.object_weight))
            loss = terms["total"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss at step {step + 1}: {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = (
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                if config.grad_clip > 0
                else torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None))
            )
            opt.step()
            sched.step()
            step += 1
            mean_terms = distributed.all_reduce_mean(torch.stack([terms[k].detach().float() for k in (*TERMS, "total")]))
            history.append(float(mean_terms[-1]))
            scalars = {f"loss/{k}": float(v) for k, v in zip((*TERMS, "total"), mean_terms, strict=True)}
            scalars.update({"lr": sched.get_last_lr()[0], "grad_norm": float(grad_norm), "frames": frames})
            logger.scalars(step, scalars)
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4g}", frames=frames)
            # every process stops at the same step: the budget decision is rank 0's clock, broadcast
            out_of_time = deadline is not None and distributed.rank0_flag(clock() >= deadline, ctx)
            if step % config.ckpt_every == 0 or step == config.steps or step == stop_after or out_of_time:
                _save(ckpt, step, student, opt, sched, frames_rng, history, config, ctx)
            if stop_after is not None and step >= stop_after:
                return TrainResult(history, step, finished=False)
            if out_of_time and step < config.steps:
                log.info("time budget of %.1f min used: stopped at step %d (resume with --resume)", config.minutes, step)
                finished = False
                break
    finally:
        bar.close()
        logger.close()
    if ctx.is_main:
        from vist3a.stitching.export import save_trained

        # also on a budget stop: a piece that is never resumed still leaves its weights
        meta = dict(model_meta or {})
        meta.setdefault("train", config.to_json())
        meta["train"]["steps_done"] = step
        meta["train"]["finished"] = finished
        save_trained(student, out, meta)
    distributed.barrier()
    return TrainResult(history, step, finished=finished)


def _draw_frames(choices: Sequence[int], g: torch.Generator, ctx: DistContext) -> int:
    """Rank 0 draws the step's frame count; every rank advances its generator and takes rank 0's."""
    pick = torch.randint(len(choices), (1,), generator=g)
    if ctx.distributed:
        import torch.distributed as dist

        t = pick.to(ctx.device)
        dist.broadcast(t, src=0)
        pick = t.cpu()
    return int(choices[int(pick)])


def _encode(video: Any, video_in: torch.Tensor, positions: list[int], config: TrainConfig, dev: torch.device) -> torch.Tensor:
    """Encode each clip with a generator seeded by its run position (independent of batching)."""
    latents = []
    for i, pos in enumerate(positions):
        g = torch.Generator(device=dev).manual_seed(_mix(config.seed, pos, 2))
        latents.append(video.encode(video_in[i : i + 1], sample=config.sample_posterior, generator=g))
    return torch.cat(latents).to(dev)


def _save(
    ckpt: CheckpointManager,
    step: int,
    student: StitchedDecoder,
    opt: torch.optim.Optimizer,
    sched: Any,
    frames_rng: torch.Generator,
    history: list[float],
    config: TrainConfig,
    ctx: DistContext,
) -> None:
    if ctx.is_main:
        ckpt.save(step, {
            "trainable": {k: v.detach().cpu() for k, v in student.trainable_state_dict().items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "frames_rng": frames_rng.get_state(),
            "history": list(history),
            "config": {k: v for k, v in config.to_json().items() if k != "weights"},
        })  # fmt: skip
    distributed.barrier()
