"""Reward alignment of the video DiT (``vist3a align``; METHOD.md §6).

``AlignTrainer`` trains a PEFT LoRA on the DiT's attention (``attn1``/``attn2`` ``to_q/k/v/out.0``,
r 8 / α 16) with ``L = w_sft · L_flow-matching − w_reward · r(z0)``, where ``z0`` comes from a DRTune
rollout (:mod:`vist3a.alignment.drtune`) and ``r`` is a :class:`~vist3a.alignment.rewards.Reward`.
The VAE, the text encoder and the stitched decoder stay frozen.

Per step: AdamW (betas 0.9/0.95, wd 0), gradient clipping, a step is skipped (and counted) when the
gradient norm is not finite, EMA of the LoRA (decay ``min((1+s)/(10+s), 0.99)``, fp32). Every
``ckpt_every`` steps a resumable checkpoint (CheckpointManager: LoRA, optimizer, EMA, RNG, history)
and the PEFT folders ``checkpoint-<step>/lora`` and ``lora_ema`` (the official layout; load
``lora_ema`` with :meth:`VideoModel.load_dit_lora` or ``PeftModel.from_pretrained``).

Every random choice of step ``s`` is drawn from a generator seeded by ``(seed, s, rank)``, and data
is indexed by ``s``: resuming at step k continues exactly as an uninterrupted run would.
Under torchrun the LoRA gradients are averaged over processes (all-reduce) before clipping; the
rollout plan (steps, gradient steps, CFG) is shared, noise and data differ per rank.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from vist3a.alignment.drtune import RolloutPlan, decode_and_render, drtune_rollout, flow_matching_loss
from vist3a.alignment.rewards import Reward
from vist3a.errors import CheckpointError, InputError
from vist3a.train import distributed
from vist3a.train.checkpoint import CheckpointManager
from vist3a.train.distributed import DistContext
from vist3a.train.ema import EMA

log = logging.getLogger(__name__)


@dataclass
class AlignConfig:
    """Everything that shapes a run (defaults: the official ``train_vdm.py`` where it is known).

    Attributes:
        lr, betas, weight_decay: AdamW (1e-4, (0.9, 0.95), 0).
        grad_clip: max gradient norm (official 1.0; the paper says 0.1); 0 = no clipping.
        lora_rank, lora_alpha: DiT LoRA (8, 16).
        drtune_k: random gradient steps per rollout, plus the last one always (official 2).
        min_steps, max_steps: rollout steps ~ U[min, max] (10, 50).
        guidance: CFG scale ~ U[g0, g1] (official (4, 6)).
        rollout_shift: flow shift of the rollout scheduler (official 3.0); scheduler "unipc" / "euler".
        sft_weight, reward_weight: loss weights (1, 1; either may be 0).
        sft_shift: timestep shift of the SFT σ (Wan's 3.0; the official training code uses 1 = none).
        sft_batch, prompt_batch: clips / prompts per process and step (official 4 / 1).
        reward_views: decoded frames (and renders) the reward looks at (paper 2; 0 = all).
        num_frames, height, width: rollout video size (official 13 × 512²).
        negative_prompt: CFG's negative prompt (official: "").
        template: prompt template with ``{prompt}`` for the rollouts ("" = prompts unchanged).
        ema_max_decay: EMA decay cap (0.99).
        ckpt_every: checkpoint period in steps; keep: checkpoints kept.
        gradient_checkpointing: DiT per-block checkpointing at the gradient steps.
        render_backend: "auto" (gsplat on CUDA) or "torch".
        seed: base seed of every random choice.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lora_rank: int = 8
    lora_alpha: float = 16.0
    drtune_k: int = 2
    min_steps: int = 10
    max_steps: int = 50
    guidance: tuple[float, float] = (4.0, 6.0)
    rollout_shift: float = 3.0
    scheduler: str = "unipc"
    sft_weight: float = 1.0
    reward_weight: float = 1.0
    sft_shift: float = 3.0
    sft_batch: int = 1
    prompt_batch: int = 1
    reward_views: int = 2
    num_frames: int = 13
    height: int = 512
    width: int = 512
    negative_prompt: str = ""
    template: str = ""
    ema_max_decay: float = 0.99
    ckpt_every: int = 100
    keep: int = 2
    gradient_checkpointing: bool = True
    render_backend: str = "auto"
    seed: int = 0

    def validate(self) -> AlignConfig:
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise InputError(f"lr must be > 0, got {self.lr}")
        if self.lora_rank < 1:
            raise InputError(f"lora rank must be >= 1, got {self.lora_rank}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise InputError(f"need 1 <= min-steps <= max-steps, got {self.min_steps}, {self.max_steps}")
        if self.drtune_k < 0:
            raise InputError(f"drtune-k must be >= 0, got {self.drtune_k}")
        if self.sft_weight < 0 or self.reward_weight < 0 or (self.sft_weight == 0 and self.reward_weight == 0):
            raise InputError("sft and reward weights must be >= 0 and not both 0")
        if self.ckpt_every < 1:
            raise InputError(f"ckpt-every must be >= 1, got {self.ckpt_every}")
        if self.sft_batch < 1 or self.prompt_batch < 1:
            raise InputError("batch sizes must be >= 1")
        if self.template and "{prompt}" not in self.template:
            raise InputError(f"the prompt template must contain '{{prompt}}', got {self.template!r}")
        return self


@dataclass
class PromptItem:
    """A rollout prompt, with the world's structured caption when there is one."""

    text: str
    caption: Any = None


@dataclass
class StepRecord:
    """What one step did (floats only: checkpointable and loggable)."""

    step: int
    loss: float
    sft: float = float("nan")
    reward: float = float("nan")
    grad_norm: float = float("nan")
    skipped: bool = False
    rollout_steps: int = 0
    terms: dict[str, float] = field(default_factory=dict)


def _seed(*parts: int) -> int:
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & ((1 << 63) - 1)


def _atomic_dir(dst: Path, write) -> Path:
    """Build a folder beside ``dst`` with ``write(tmp)`` and rename it into place (replacing ``dst``)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        write(tmp)
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
            os.replace(tmp, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


class AlignTrainer:
    """LoRA reward alignment of a :class:`~vist3a.models.video.VideoModel`'s DiT.

    Args:
        video: the video model (DiT + VAE + text encoder). A LoRA is added unless the DiT already
            is a trainable ``PeftModel``.
        decoder: the stitched decoder (frozen), or None when no reward needs renders.
        reward: a :class:`Reward` (e.g. :func:`~vist3a.alignment.rewards.build_reward`).
        prompts: rollout prompts (:class:`PromptItem` or strings), consumed in order.
        config: :class:`AlignConfig`.
        out: run folder (``checkpoints/``, ``tb/``, ``lora/``, ``lora_ema/``).
        sft_data: a dataset of ``{"images" [T,3,H,W] in [0,1], "text" | "caption"}``, or None.
        dist: the :class:`DistContext` (default: single process).
        logger: a :class:`~vist3a.train.logger.RunLogger` or None.
    """

    def __init__(
        self,
        video,
        decoder,
        reward: Reward | None,
        prompts: Sequence[PromptItem | str],
        config: AlignConfig,
        out: str | os.PathLike[str],
        sft_data=None,
        dist: DistContext | None = None,
        logger=None,
    ) -> None:
        self.cfg = config.validate()
        self.video, self.decoder, self.reward = video, decoder, reward
        self.prompts = [p if isinstance(p, PromptItem) else PromptItem(str(p)) for p in prompts]
        self.sft_data = sft_data
        self.out = Path(out)
        self.dist = dist or DistContext(0, 1, 0, video._dit_exec_device())
        self.logger = logger
        if self.cfg.reward_weight > 0:
            if reward is None or not self.prompts:
                raise InputError("reward alignment needs a reward and at least one prompt (or set reward weight 0)")
            if reward.needs_renders and decoder is None:
                raise InputError("the reward needs renders but no stitched decoder was given")
        if self.cfg.sft_weight > 0 and sft_data is None:
            raise InputError("the SFT loss needs captioned clips (--sft-data), or set its weight to 0")
        if self.cfg.sft_weight > 0 and len(sft_data) == 0:
            raise InputError("the SFT dataset is empty")
        video.latent_shape(1, self.cfg.num_frames, self.cfg.height, self.cfg.width)  # checks sizes

        # frozen parts
        video.vae.requires_grad_(False).eval()
        if video.text_encoder is not None:
            video.text_encoder.requires_grad_(False).eval()
        if decoder is not None:
            decoder.requires_grad_(False).eval()
        if reward is not None:
            reward.requires_grad_(False)
        # the LoRA
        import peft

        if not isinstance(video.transformer, peft.PeftModel):
            with torch.random.fork_rng(devices=[]):  # LoRA A init from the run's seed, not the global RNG
                torch.manual_seed(_seed(self.cfg.seed, 0x10AA))
                video.add_dit_lora(self.cfg.lora_rank, self.cfg.lora_alpha)
        for p in video.transformer.parameters():
            if p.requires_grad and p.dtype != torch.float32:
                p.data = p.data.float()  # LoRA weights train in fp32 (the base may be bf16)
        if self.cfg.gradient_checkpointing:
            video.transformer.get_base_model().enable_gradient_checkpointing()
        video.transformer.train()
        self.params = [p for p in video.transformer.parameters() if p.requires_grad]
        if not self.params:
            raise InputError("the DiT has no trainable (LoRA) parameters")
        self.optimizer = torch.optim.AdamW(
            self.params, lr=self.cfg.lr, betas=self.cfg.betas, weight_decay=self.cfg.weight_decay
        )
        self.ema = EMA(video.transformer, decay=0.0)
        self.ckpt = CheckpointManager(self.out / "checkpoints", keep=self.cfg.keep)
        self.step = 0
        self.skipped = 0
        self.history: list[StepRecord] = []
        self.finished = False
        self.step_seconds: list[float] = []  # wall time of each step of this process's session
        self._negative = None

    # ------------------------------------------------------------------ state
    def lora_state(self) -> dict[str, torch.Tensor]:
        """Trainable (LoRA) parameters by name, detached CPU copies."""
        return {n: p.detach().cpu().clone() for n, p in self.video.transformer.named_parameters() if p.requires_grad}

    def save(self) -> Path | None:
        """Write a resumable checkpoint and the PEFT folders (main process only)."""
        if not self.dist.is_main:
            return None
        state = {
            "lora": self.lora_state(),
            "optim": self.optimizer.state_dict(),
            "ema": self.ema.state_dict(),
            "skipped": self.skipped,
            "history": [asdict(r) for r in self.history],
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.cfg).items()},
        }
        path = self.ckpt.save(self.step, state)
        self.export(self.out / "checkpoints" / f"checkpoint-{self.step}")
        return path

    def resume(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Restore the latest (or ``path``) checkpoint; returns False when there is none."""
        state = self.ckpt.load(path)
        if state is None:
            return False
        params = dict(self.video.transformer.named_parameters())
        lora = state.get("lora", {})
        missing = [n for n, p in params.items() if p.requires_grad and n not in lora]
        if missing:
            raise CheckpointError(
                f"checkpoint LoRA does not match this model (missing {missing[:2]}); same --lora-rank and model?"
            )
        with torch.no_grad():
            for n, v in lora.items():
                if n not in params or params[n].shape != v.shape:
                    raise CheckpointError(f"checkpoint LoRA tensor {n} does not fit this model")
                params[n].copy_(v.to(params[n].device, params[n].dtype))
        self.optimizer.load_state_dict(state["optim"])
        self.ema.load_state_dict({k: v.to(params[k].device) for k, v in state["ema"].items()})
        self.skipped = int(state.get("skipped", 0))
        self.history = [StepRecord(**r) for r in state.get("history", [])]
        self.step = int(state["step"])
        return True

    def export(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``folder/lora`` (current) and ``folder/lora_ema`` (EMA) as PEFT adapter folders."""
        folder = Path(folder)
        dit = self.video.transformer
        _atomic_dir(folder / "lora", lambda tmp: dit.save_pretrained(str(tmp)))
        with self.ema.applied(dit):
            _atomic_dir(folder / "lora_ema", lambda tmp: dit.save_pretrained(str(tmp)))
        return folder

    def export_merged(self, folder: str | os.PathLike[str], dtype: torch.dtype | None = torch.float16) -> Path:
        """Write the video model with the **EMA** LoRA merged into the DiT, in the layout of
        :meth:`VideoModel.save_pretrained` (``vae/``, ``transformer/``, ``video_model.json``), so that
        ``registry.build("wan-mini", weights=folder)`` (or a pipeline folder's ``"video": {"path": ...}``)
        loads it as a plain model. ``dtype``: the DiT's storage dtype (modules diffusers keeps in fp32
        stay fp32; None = as trained).
        """
        import copy

        from vist3a.models.video import VideoModel, cast_keeping_fp32

        dit = copy.deepcopy(self.video.transformer)
        self.ema.copy_to(dit)
        merged = dit.merge_and_unload().eval()
        merged.disable_gradient_checkpointing()
        merged.requires_grad_(False)
        if dtype is not None:
            cast_keeping_fp32(merged, dtype)
        v = self.video
        model = VideoModel(v.vae, merged, None, flow_shift=v.flow_shift, name=v.name)
        return _atomic_dir(Path(folder), lambda tmp: model.save_pretrained(tmp))

    # ------------------------------------------------------------------ data
    def _gen(self, salt: int, per_rank: bool) -> torch.Generator:
        rank = self.dist.rank if per_rank else -1
        return torch.Generator().manual_seed(_seed(self.cfg.seed, self.step, salt, rank))

    def _prompt_batch(self) -> list[PromptItem]:
        n, b = len(self.prompts), self.cfg.prompt_batch
        base = (self.step * self.dist.world_size + self.dist.rank) * b
        return [self.prompts[(base + j) % n] for j in range(b)]

    def _sft_batch(self) -> tuple[torch.Tensor, list[str]]:
        n, b = len(self.sft_data), self.cfg.sft_batch
        base = (self.step * self.dist.world_size + self.dist.rank) * b
        epoch = base // n
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.cfg.seed, epoch, 7)))
        clips, texts = [], []
        for j in range(b):
            k = base + j
            if k // n != epoch:  # crossing into the next epoch
                epoch = k // n
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(self.cfg.seed, epoch, 7)))
            item = self.sft_data[int(perm[k % n])]
            clips.append(item["images"].float())
            text = item.get("text", item.get("caption"))
            if not isinstance(text, str):
                raise InputError("SFT items need a text caption ('text' or 'caption')")
            texts.append(text)
        shapes = {tuple(c.shape) for c in clips}
        if len(shapes) != 1:
            raise InputError(f"SFT clips differ in shape: {sorted(shapes)}")
        return torch.stack(clips), texts

    def _template(self, text: str) -> str:
        return self.cfg.template.replace("{prompt}", text) if self.cfg.template else text

    # ------------------------------------------------------------------ one step
    def plan(self) -> RolloutPlan:
        """The rollout plan of the current step (shared by all ranks)."""
        c = self.cfg
        return RolloutPlan.draw(self._gen(1, per_rank=False), c.min_steps, c.max_steps, c.drtune_k, c.guidance)

    def reward_pass(self, on_step=None) -> tuple[torch.Tensor, RolloutPlan, dict[str, float]]:
        """One DRTune rollout + reward. Returns (``reward [B]`` with grad, plan, per-term means)."""
        c, video = self.cfg, self.video
        items = self._prompt_batch()
        plan = self.plan()
        gen = self._gen(2, per_rank=True)
        cond = video.encode_text([self._template(p.text) for p in items])
        uncond = None
        if plan.guidance_scale != 1.0:
            uncond = video.encode_text([c.negative_prompt])
        shape = video.latent_shape(len(items), c.num_frames, c.height, c.width)
        noise = torch.randn(shape, generator=gen)
        z0 = drtune_rollout(video, cond, uncond, noise, plan, c.scheduler, c.rollout_shift, on_step=on_step)
        t = c.num_frames
        nv = t if c.reward_views <= 0 else min(c.reward_views, t)
        views = torch.randperm(t, generator=gen)[:nv].tolist()
        if getattr(self.reward, "needs_first_view", False) and 0 not in views:
            views[-1] = 0  # relation terms read the caption's view (frame 0)
        views = sorted(views)
        scene = decode_and_render(
            video, self.decoder, z0, views, with_renders=self.reward.needs_renders, backend=c.render_backend
        )
        r = self.reward(scene.frames, scene.renders, [p.text for p in items], captions=[p.caption for p in items])
        terms = dict(getattr(self.reward, "last", {}) or {})
        return r, plan, terms

    def train_step(self, on_step=None) -> StepRecord:
        """One optimisation step (SFT + reward), with clipping, non-finite skip, EMA and checkpoints."""
        c = self.cfg
        self.optimizer.zero_grad(set_to_none=True)
        rec = StepRecord(step=self.step, loss=0.0)
        if c.sft_weight > 0:
            clips, texts = self._sft_batch()
            emb = self.video.encode_text(texts)
            l_sft = flow_matching_loss(self.video, clips, emb, self._gen(3, per_rank=True), c.sft_shift)
            (c.sft_weight * l_sft).backward()
            rec.sft = float(l_sft.detach())
            rec.loss += c.sft_weight * rec.sft
        if c.reward_weight > 0:
            r, plan, terms = self.reward_pass(on_step)
            l_rew = -r.float().mean()
            (c.reward_weight * l_rew).backward()
            rec.reward = float(r.detach().float().mean())
            rec.loss += c.reward_weight * float(l_rew.detach())
            rec.rollout_steps = plan.num_steps
            rec.terms = terms
        self._reduce_grads()
        if c.grad_clip > 0:
            gn = torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        else:
            gn = torch.norm(torch.stack([p.grad.norm() for p in self.params if p.grad is not None]))
        rec.grad_norm = float(gn)
        if math.isfinite(rec.grad_norm):
            self.optimizer.step()
            self.ema.decay = min((1.0 + self.step) / (10.0 + self.step), c.ema_max_decay)
            self.ema.update(self.video.transformer)
        else:
            rec.skipped = True
            self.skipped += 1
            self.optimizer.zero_grad(set_to_none=True)
            log.warning("step %d: non-finite gradient norm, update skipped (%d so far)", self.step, self.skipped)
        self.step += 1
        self.history.append(rec)
        if self.logger is not None:
            vals = {"loss/total": rec.loss, "grad_norm": rec.grad_norm, "skipped_steps": float(self.skipped)}
            if c.sft_weight > 0:
                vals["loss/sft"] = rec.sft
            if c.reward_weight > 0:
                vals["reward/total"] = rec.reward
                vals["rollout_steps"] = float(rec.rollout_steps)
                vals.update({f"reward/{k}": v for k, v in rec.terms.items()})
            self.logger.scalars(self.step, vals)
        if self.step % c.ckpt_every == 0:
            self.save()
        return rec

    def _reduce_grads(self) -> None:
        if not self.dist.distributed:
            return
        import torch.distributed as tdist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        tdist.all_reduce(flat, op=tdist.ReduceOp.SUM)
        flat /= self.dist.world_size
        off = 0
        for p, g in zip(self.params, grads, strict=True):
            n = g.numel()
            p.grad = flat[off : off + n].view_as(p).clone()
            off += n

    def train(
        self,
        steps: int,
        progress: bool = True,
        minutes: float = 0.0,
        merged: str | os.PathLike[str] | None = None,
        clock=time.monotonic,
    ) -> list[StepRecord]:
        """Run until ``self.step == steps`` or until ``minutes`` of wall clock are used (``<= 0``: no budget).

        At the end (either way) a resumable checkpoint is written and the LoRA is exported: ``lora/`` and
        ``lora_ema/`` in the run folder and, with ``merged``, the EMA-merged video model there
        (:meth:`export_merged`). ``self.finished`` tells whether ``steps`` was reached; a run stopped by its
        budget continues with :meth:`resume`. Under torchrun, the main process's clock decides for all.
        """
        from tqdm.auto import tqdm

        if steps < self.step:
            raise InputError(f"--steps {steps} is below the resumed step {self.step}")
        deadline = clock() + 60.0 * minutes if minutes > 0 else None
        bar = tqdm(total=steps, initial=self.step, desc="align", disable=not (progress and self.dist.is_main))
        try:
            last = 0.0
            while self.step < steps:
                # stop when the next step (as long as the last one) would end past the budget
                if deadline is not None and self._out_of_time(clock() + last >= deadline):
                    log.info("time budget of %.1f min used: stopped at step %d (resume with --resume)", minutes, self.step)
                    break
                t0, c0 = time.perf_counter(), clock()
                rec = self.train_step()
                last = clock() - c0
                self.step_seconds.append(time.perf_counter() - t0)
                bar.update(1)
                post = {"loss": f"{rec.loss:.4f}"}
                if not math.isnan(rec.reward):
                    post["reward"] = f"{rec.reward:.4f}"
                bar.set_postfix(post)
        finally:
            bar.close()
        self.finished = self.step >= steps
        if self.dist.is_main:
            if self.step % self.cfg.ckpt_every != 0 or not self.history:
                self.save()
            self.export(self.out)
            if merged is not None:
                self.export_merged(merged)
        return self.history

    def _out_of_time(self, mine: bool) -> bool:
        """The main process's verdict, shared with every rank (so all stop at the same step)."""
        return distributed.rank0_flag(mine, self.dist)
