"""Trained stitched decoders on disk: our format, the official format, and a merged export.

**Ours** (a folder): ``stitched.safetensors`` = :meth:`StitchedDecoder.trainable_state_dict` (peft
names: ``recon.<layer>.lora_A.default.weight``, ``recon.<layer>.base_layer.bias``,
``stitching_layer.weight``, ``recon.encoder.aggregator.patch_embed.cls_token`` …) and
``stitched.json`` = ``{"format", "decoder": <decoder config incl. LoRA>, "recon", "recon_weights",
"recon_overrides", "video", "video_weights", "stitched", "train"}``. Base weights are not stored; they
are rebuilt from the named presets/weights, as the official code rebuilds them from HF.

**Official** (``anysplat_stitched.pth``): ``{"lora": {<layer>.lora_A, <layer>.lora_B, <layer>.bias},
"stitching_layer": {weight, bias}, "cls_token", "register_tokens", "mask_token"}`` with DINO blocks
numbered after deleting the first k.

**Conversion.** Linear LoRA layouts coincide (A ``[r, in]``, B ``[out, r]``, ΔW = B·A·α/r). Conv LoRA
does not: peft stores A ``[r, in, k, k]`` (a conv) and B ``[out, r, 1, 1]``, so ΔW[o] = Σ_j B[o,j] A[j]
has rank ≤ r as an ``[out, in·k·k]`` matrix; loralib stores A ``[r·k, in·k]``, B ``[out·k, r·k]`` and
ΔW = (B·A).view(out, in, k, k), of rank ≤ r·k as the ``[out·k, in·k]`` matrix M = ΔW.view(out·k, in·k).

- ours → official is always exact: every row of M is a slice of some ΔW[o], so M's rows lie in the
  span of the r·k slices of the A[j]; rank(M) ≤ r·k and a truncated SVD of M gives the loralib pair
  (up to float rounding). 1×1 convs need no SVD.
- official → ours is exact for Linear and 1×1 convs. For k×k convs an official ΔW can have rank up
  to min(out, r·k²) in peft's matricisation, more than peft's r; :func:`from_official` factorises it
  by SVD, keeps r, and raises :class:`CheckpointError` when the dropped part is above ``tol``
  (a checkpoint that came from us round-trips exactly). For such checkpoints use the merged route:
  :meth:`StitchedDecoder.load_official` merges every ΔW into the base weights exactly, and
  :func:`save_merged` writes a full merged state dict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vist3a.errors import CheckpointError, InputError
from vist3a.io_utils import atomic_path, atomic_write_text
from vist3a.stitching.lora import LoraSpec
from vist3a.stitching.stitched import TOKEN_NAMES, StitchedDecoder, _official_groups

log = logging.getLogger(__name__)

FORMAT = "vist3a-stitched-v1"
WEIGHTS_FILE = "stitched.safetensors"
CONFIG_FILE = "stitched.json"
_PE = "recon.encoder.aggregator.patch_embed."


# ------------------------------------------------------------------------------------------------ ours
def save_trained(decoder: StitchedDecoder, folder: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``stitched.safetensors`` (trainable state) and ``stitched.json`` into ``folder``, atomically."""
    from safetensors.torch import save_file

    if decoder.lora is None:
        raise InputError("save_trained expects a decoder with LoRA (the trained state); use save_merged otherwise")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() for k, v in decoder.trainable_state_dict().items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    doc = {"format": FORMAT, **dict(meta or {}), "decoder": decoder.config}
    atomic_write_text(out / CONFIG_FILE, json.dumps(doc, indent=1, default=str) + "\n")
    return out


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a trained stitched decoder (no {CONFIG_FILE})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if doc.get("format") != FORMAT or "decoder" not in doc:
        raise CheckpointError(f"{path}: not a {FORMAT} description")
    return doc


def build_decoder(doc: Mapping[str, Any], device: Any = "cpu", recon: nn.Module | None = None) -> StitchedDecoder:
    """The untrained decoder a ``stitched.json`` describes (base weights from its presets, LoRA added)."""
    from vist3a import registry

    dec_cfg = doc["decoder"]
    if recon is None and doc.get("stitched"):
        kw = {"recon_weights": doc["recon_weights"]} if doc.get("recon_weights") else {}
        dec = registry.build(doc["stitched"], device=device, **kw, **dict(doc.get("recon_overrides") or {}))
        dec.official_compat = bool(dec_cfg.get("official_compat", dec.official_compat))
    else:
        if recon is None:
            if not doc.get("recon"):
                raise CheckpointError("stitched.json names neither a 'stitched' nor a 'recon' preset")
            kw = {"weights": doc["recon_weights"]} if doc.get("recon_weights") else {}
            recon = registry.build(doc["recon"], device=device, **kw, **dict(doc.get("recon_overrides") or {}))
        with torch.device(device):
            dec = StitchedDecoder(
                recon, dec_cfg["spec"], dec_cfg["layer"], tuple(dec_cfg["latent_grid"]),
                time_factor=int(dec_cfg.get("time_factor", 4)), official_compat=bool(dec_cfg.get("official_compat")),
                image_size=dec_cfg.get("image_size"),
            )  # fmt: skip
    lora = dec_cfg.get("lora")
    if lora:
        dec.requires_grad_(False)
        dec.add_lora(LoraSpec(**{**lora, "targets": tuple(lora.get("targets") or ())}))
    return dec


def load_trained(folder: str | Path, device: Any = "cpu", recon: nn.Module | None = None) -> StitchedDecoder:
    """Rebuild a decoder saved by :func:`save_trained` and load its trained state (eval mode)."""
    from safetensors.torch import load_file

    doc = read_config(folder)
    dec = build_decoder(doc, device, recon)
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None
    dec.load_trainable_state_dict(state)
    return dec.eval()


# -------------------------------------------------------------------------------------------- official
def _lora_layers(decoder: StitchedDecoder) -> dict[str, nn.Module]:
    """``{our module name: peft LoRA layer}``."""
    return {n: m for n, m in decoder.named_modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")}


def _official_key(name: str, block: int) -> str:
    """``recon.encoder.aggregator.patch_embed.blocks.5.attn.qkv`` → official numbering (first ``block`` deleted)."""
    key = name[len("recon."):]
    prefix = "encoder.aggregator.patch_embed.blocks."
    if key.startswith(prefix):
        idx, _, rest = key[len(prefix):].partition(".")
        return f"{prefix}{int(idx) - block}.{rest}"
    return key


def _factor(m: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``m ≈ b @ a`` with inner size ``rank`` (SVD); returns (b, a, relative Frobenius error)."""
    u, s, vh = torch.linalg.svd(m.double(), full_matrices=False)
    k = min(rank, s.numel())
    root = s[:k].sqrt()
    b = torch.zeros(m.shape[0], rank, dtype=torch.float64)
    a = torch.zeros(rank, m.shape[1], dtype=torch.float64)
    b[:, :k] = u[:, :k] * root
    a[:k] = root[:, None] * vh[:k]
    norm = float(s.square().sum().sqrt())
    err = float(s[k:].square().sum().sqrt()) / norm if norm > 0 else 0.0
    return b.float(), a.float(), err


def to_official(decoder: StitchedDecoder) -> dict[str, Any]:
    """Our trained decoder → the official checkpoint dict (exact; conv pairs re-factorised, see module doc)."""
    if decoder.lora is None:
        raise InputError("to_official needs a decoder with LoRA")
    r = decoder.lora.rank
    lora: dict[str, torch.Tensor] = {}
    for name, layer in _lora_layers(decoder).items():
        key = _official_key(name, decoder.block)
        base = layer.base_layer
        a = layer.lora_A["default"].weight.detach().float().cpu()
        b = layer.lora_B["default"].weight.detach().float().cpu()
        if isinstance(base, nn.Linear):
            lora[f"{key}.lora_A"], lora[f"{key}.lora_B"] = a.clone(), b.clone()
        else:
            k = base.kernel_size[0]
            out_c, in_c = base.out_channels, base.in_channels
            if k == 1:
                lora[f"{key}.lora_A"], lora[f"{key}.lora_B"] = a.reshape(r, in_c).clone(), b.reshape(out_c, r).clone()
            else:
                delta = torch.einsum("or,rikl->oikl", b[:, :, 0, 0].double(), a.double())  # unscaled ΔW
                bo, ao, err = _factor(delta.reshape(out_c * k, in_c * k), r * k)
                if err > 1e-5:  # cannot happen (rank(M) <= r·k); a guard against a wrong layout
                    raise CheckpointError(f"{name}: conv LoRA not representable in loralib form (error {err:.2g})")
                lora[f"{key}.lora_A"], lora[f"{key}.lora_B"] = ao, bo
        if base.bias is not None:
            lora[f"{key}.bias"] = base.bias.detach().float().cpu().clone()
    pe = decoder.recon.encoder.aggregator.patch_embed
    out: dict[str, Any] = {
        "lora": lora,
        "stitching_layer": {k: v.detach().float().cpu().clone() for k, v in decoder.stitching_layer.state_dict().items()},
    }
    for t in TOKEN_NAMES:
        out[t] = getattr(pe, t).detach().float().cpu().clone()
    return out


def save_official(decoder: StitchedDecoder, path: str | Path) -> Path:
    """Write :func:`to_official` as a ``.pth`` (``torch.save``), atomically."""
    with atomic_path(path) as tmp:
        torch.save(to_official(decoder), tmp)
    return Path(path)


def from_official(
    decoder: StitchedDecoder, checkpoint: str | Path | Mapping[str, Any], tol: float = 1e-4
) -> dict[str, float]:
    """Load an official checkpoint into a decoder with peft LoRA of the same rank (unmerged).

    Linear and 1×1-conv pairs are copied. k×k conv pairs are refactorised by SVD to peft's rank r;
    returns ``{layer: relative error}`` of those, and raises :class:`CheckpointError` when one exceeds
    ``tol`` (use :meth:`StitchedDecoder.load_official`, which merges exactly, for such checkpoints).
    """
    if decoder.lora is None:
        raise InputError("from_official needs a decoder with LoRA of the checkpoint's rank (add_lora first)")
    groups = _official_groups(checkpoint)
    r = decoder.lora.rank
    layers = {_official_key(n, decoder.block): m for n, m in _lora_layers(decoder).items()}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in groups["lora"].items():
        owner, _, leaf = key.rpartition(".")
        parts.setdefault(owner, {})[leaf] = value
    unknown = sorted(set(parts) - set(layers))
    if unknown:
        raise CheckpointError(f"{len(unknown)} official LoRA entries match no layer, e.g. {unknown[:3]}")
    errors: dict[str, float] = {}
    too_far = []
    with torch.no_grad():
        for owner, p in parts.items():
            layer = layers[owner]
            base = layer.base_layer
            a_t, b_t = layer.lora_A["default"].weight, layer.lora_B["default"].weight
            if "lora_A" in p and "lora_B" in p:
                a, b = p["lora_A"].float(), p["lora_B"].float()
                if isinstance(base, nn.Linear) or base.kernel_size[0] == 1:
                    if a.shape[0] != r:
                        raise CheckpointError(f"{owner}: official rank {a.shape[0]} != LoRA rank {r}")
                    a_t.copy_(a.reshape(a_t.shape))
                    b_t.copy_(b.reshape(b_t.shape))
                else:
                    k = base.kernel_size[0]
                    out_c, in_c = base.out_channels, base.in_channels
                    delta = (b.double() @ a.double()).view(out_c, in_c, k, k)
                    bo, ao, err = _factor(delta.reshape(out_c, in_c * k * k), r)
                    errors[owner] = err
                    if err > tol:
                        too_far.append(owner)
                    a_t.copy_(ao.reshape(a_t.shape))
                    b_t.copy_(bo.reshape(b_t.shape))
            if "bias" in p:
                if base.bias is None:
                    raise CheckpointError(f"{owner}: official bias for a layer without bias")
                base.bias.copy_(p["bias"].to(base.bias.dtype))
        conv = groups["stitching_layer"]
        decoder.stitching_layer.load_state_dict({k: conv[k] for k in ("weight", "bias")})
        pe = decoder.recon.encoder.aggregator.patch_embed
        for t in TOKEN_NAMES:
            getattr(pe, t).copy_(groups[t].reshape(getattr(pe, t).shape))
    if too_far:
        raise CheckpointError(
            f"{len(too_far)} conv LoRA pairs of the official checkpoint have rank > {r} in peft's layout "
            f"(e.g. {too_far[0]}: relative error {errors[too_far[0]]:.2g}); load it merged with "
            "StitchedDecoder.load_official (exact) or `vist3a stitch convert --merged`"
        )
    return errors


# ---------------------------------------------------------------------------------------------- merged
def merged_state_dict(decoder: StitchedDecoder) -> dict[str, torch.Tensor]:
    """The full state dict with every LoRA ΔW merged into its base weight (names of a LoRA-free decoder)."""
    dec = decoder
    if dec.lora is not None:
        import copy

        dec = copy.deepcopy(decoder)
        for layer in _lora_layers(dec).values():
            layer.merge()
    out = {}
    for k, v in dec.state_dict().items():
        if ".lora_" in k:
            continue
        out[k.replace(".base_layer.", ".")] = v.detach().cpu().contiguous()
    return out


def save_merged(decoder: StitchedDecoder, path: str | Path) -> Path:
    """Write :func:`merged_state_dict` as safetensors (loads with ``load_state_dict`` into the plain preset)."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(merged_state_dict(decoder), str(tmp), metadata={"format": "vist3a-stitched-merged-v1"})
    return Path(path)


__all__ = [
    "save_trained", "load_trained", "read_config", "build_decoder", "to_official", "save_official",
    "from_official", "merged_state_dict", "save_merged",
]  # fmt: skip
