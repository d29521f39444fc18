"""LoRA on the stitched reconstruction network, through peft, and the official loralib layout.

The official code (loralib style) wraps every ``nn.Linear`` and every square-kernel ``nn.Conv2d`` after
the cut, and its config string reads ``r64,a32,d0.0,f0`` (METHOD.md §3.1). We parse that string, pick
the same layers, and let peft inject the adapters (``bias="lora_only"`` makes the wrapped layers'
biases trainable, as the official ``mark_only_lora_as_trainable(bias="lora_only")`` does).

Official conv LoRA differs from peft's: loralib's ``ConvLoRA`` stores ``A [r·k, in·k]``,
``B [out·k, r·k]`` and ``ΔW = (B @ A).view(out, in, k, k) · α/r``; :func:`official_delta` computes
that ΔW so an official checkpoint can be merged exactly into the base weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from vist3a.errors import CheckpointError, InputError


@dataclass(frozen=True)
class LoraSpec:
    """A parsed official LoRA config string.

    Attributes:
        rank: r.
        alpha: α (scaling = α / r).
        dropout: LoRA dropout.
        bias: ``"none" | "all" | "lora_only"`` (official default ``lora_only``).
        fan_in_fan_out: ``f1`` is only for GPT-2 Conv1D weights; must be False here.
        targets: optional module-name substrings (``t<a|b>``); empty = every Linear / square Conv2d.
    """

    rank: int = 64
    alpha: float = 32.0
    dropout: float = 0.0
    bias: str = "lora_only"
    fan_in_fan_out: bool = False
    targets: tuple[str, ...] = ()

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


_CHUNK = re.compile(r"^(r|a|d|b|t|f)(.+)$")


def parse_lora_config(text: str) -> LoraSpec:
    """Parse ``"r64,a32,d0.0,f0"`` (chunks: r<rank> a<alpha> d<dropout> b<bias> t<m1|m2> f<0|1> enc fix_head)."""
    values: dict[str, object] = {}
    for chunk in (c.strip() for c in text.split(",") if c.strip()):
        if chunk in ("enc", "fix_head"):  # parsed but unused by the official trainer
            continue
        m = _CHUNK.match(chunk)
        if not m:
            raise InputError(f"LoRA config chunk {chunk!r} not understood (expected r<int>, a<float>, d<float>, "
                             "b<none|all|lora_only>, t<mod|mod>, f<0|1>)")
        key, val = m.groups()
        try:
            if key == "r":
                values["rank"] = int(val)
            elif key == "a":
                values["alpha"] = float(val)
            elif key == "d":
                values["dropout"] = float(val)
            elif key == "b":
                if val not in ("none", "all", "lora_only"):
                    raise ValueError(val)
                values["bias"] = val
            elif key == "t":
                values["targets"] = tuple(v for v in val.split("|") if v)
            elif key == "f":
                values["fan_in_fan_out"] = bool(int(val))
        except ValueError as exc:
            raise InputError(f"LoRA config chunk {chunk!r} has a bad value") from exc
    spec = LoraSpec(**values)  # type: ignore[arg-type]
    if spec.rank < 1:
        raise InputError(f"LoRA rank must be >= 1, got {spec.rank}")
    if spec.fan_in_fan_out:
        raise InputError("LoRA f1 (fan_in_fan_out) is for GPT-2 Conv1D weights; this network needs f0")
    return spec


def lora_target_names(module: nn.Module, spec: LoraSpec | None = None) -> list[str]:
    """Names of the layers the official code wraps: every ``nn.Linear`` and square-kernel ``nn.Conv2d``."""
    names = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear) or (
            isinstance(sub, nn.Conv2d) and sub.kernel_size[0] == sub.kernel_size[1]
        ):
            if spec is not None and spec.targets and not any(t in name for t in spec.targets):
                continue
            names.append(name)
    return names


def inject_lora(module: nn.Module, spec: LoraSpec) -> nn.Module:
    """Add peft LoRA adapters to ``module`` in place; freezes everything but LoRA (and biases per ``spec.bias``)."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = lora_target_names(module, spec)
    if not targets:
        raise InputError("no Linear or square Conv2d layer to put LoRA on")
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=targets,
        bias=spec.bias,
    )
    return inject_adapter_in_model(config, module)


def official_delta(base: nn.Module, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float) -> torch.Tensor:
    """ΔW of an official (loralib) LoRA pair for ``base`` (``nn.Linear`` or square ``nn.Conv2d``).

    Linear: ``A [r,in]``, ``B [out,r]`` → ``(B@A)·s``. Conv2d k×k: ``A [r·k, in·k]``, ``B [out·k, r·k]`` →
    ``(B@A).view(out, in, k, k)·s``.
    """
    w = base.weight
    delta = (lora_b.float() @ lora_a.float()) * scaling
    if isinstance(base, nn.Linear):
        if delta.shape != w.shape:
            raise CheckpointError(f"LoRA pair gives {list(delta.shape)}, layer weight is {list(w.shape)}")
        return delta
    out_c, in_c, k, _ = w.shape
    if delta.numel() != w.numel():
        raise CheckpointError(f"conv LoRA pair gives {delta.numel()} values, layer weight has {w.numel()}")
    return delta.view(out_c, in_c, k, k)
