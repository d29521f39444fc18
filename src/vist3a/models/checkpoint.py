"""Load official weights unchanged and strictly.

``weights`` may be
- a file: ``*.safetensors`` (read tensor by tensor) or ``*.pt``/``*.pth``/``*.bin`` (``torch.load(weights_only=True)``);
- a folder holding one of ``model.safetensors``, ``model.safetensors.index.json`` (shards), ``model.pt``,
  ``pytorch_model.bin``;
- a Hugging Face id ``owner/name`` (resolved through ``huggingface_hub``; the local cache is used first);
- an in-memory ``dict[str, Tensor]``.

Every key must match by name and shape (mismatches are reported by key name); each tensor is cast to
the dtype of the parameter it lands in, so a bf16 aggregator on disk loads into an fp32 model and
vice versa.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vist3a.errors import CheckpointError, MissingWeightsError

log = logging.getLogger(__name__)

CANDIDATES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "model.pt",
    "pytorch_model.bin",
    "model.pth",
)
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _hf_resolve(repo_id: str, allow_download: bool) -> Path:
    """A file of Hugging Face repo ``repo_id`` from the cache (or downloaded when allowed)."""
    hint = (
        f"weights {repo_id!r} are not on this machine: download "
        f"https://huggingface.co/{repo_id}/resolve/main/model.safetensors (e.g. `huggingface-cli download {repo_id}`) "
        f"into a folder and pass the folder as `--model FOLDER` (CLI) or `weights=FOLDER`"
    )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - dependency
        raise MissingWeightsError(hint) from exc
    from huggingface_hub.errors import EntryNotFoundError

    names = ("model.safetensors", "model.pt", "pytorch_model.bin")
    errors = []
    for name in names:  # the local cache first
        try:
            return Path(hf_hub_download(repo_id, name, local_files_only=True))
        except Exception as exc:
            errors.append(f"{name} (cache): {type(exc).__name__}")
    if allow_download and _hub_reachable():
        for name in names:
            try:
                return Path(hf_hub_download(repo_id, name))
            except EntryNotFoundError:
                errors.append(f"{name}: not in the repo")
                continue  # the repo exists; try the next file name
            except Exception as exc:  # no network, no such repo, no access: stop here
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                break
    log.debug("hugging face lookup of %s failed: %s", repo_id, "; ".join(errors))
    raise MissingWeightsError(hint)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint resolves and accepts a TCP connection (fast offline check)."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(weights: str | os.PathLike[str], allow_download: bool = True) -> Path:
    """Turn a path or Hugging Face id into a weights file path (clear error when absent)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        allow_download = False
    p = Path(weights).expanduser()
    if p.is_dir():
        for name in CANDIDATES:
            if (p / name).is_file():
                return p / name
        files = sorted(f.name for f in p.glob("*.safetensors")) + sorted(f.name for f in p.glob("*.pt*"))
        if len(files) == 1:
            return p / files[0]
        raise MissingWeightsError(
            f"no weights file in {p} (expected one of {', '.join(CANDIDATES)}; found {files or 'nothing'})"
        )
    if p.is_file():
        return p
    if _HF_ID.match(str(weights)) and not str(weights).startswith((".", "/")):
        return _hf_resolve(str(weights), allow_download)
    raise MissingWeightsError(
        f"weights not found: {weights} (no such file or folder, and not a Hugging Face id)"
    )


def _unwrap(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "module"):
            inner = obj.get(key)
            if (
                isinstance(inner, Mapping)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return inner
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")


def iter_checkpoint(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, loader)`` pairs; ``loader()`` returns the tensor (lazy for safetensors)."""
    name = path.name
    if name.endswith(".index.json"):
        try:
            index = json.loads(path.read_text())["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} is not a safetensors shard index: {exc}") from exc
        for shard in sorted(set(index.values())):
            yield from iter_checkpoint(path.parent / shard)
        return
    if name.endswith(".safetensors"):
        from safetensors import SafetensorError, safe_open

        try:
            f = safe_open(str(path), framework="pt", device="cpu")
            keys = list(f.keys())
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
        for k in keys:
            yield k, (lambda k=k: f.get_tensor(k))
        return
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:
            raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    for k, v in _unwrap(obj, path).items():
        yield k, (lambda v=v: v)


def _summary(keys: Sequence[str], limit: int = 8) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_weights(
    model: nn.Module,
    weights: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    strict: bool = True,
    ignore_prefixes: Sequence[str] = (),
    allow_download: bool = True,
) -> dict[str, list[str]]:
    """Copy checkpoint tensors into ``model``'s parameters and persistent buffers.

    Args:
        model: the module whose ``state_dict()`` names the checkpoint must match.
        weights: file, folder, Hugging Face id or in-memory state dict.
        strict: raise :class:`CheckpointError` on missing/unexpected keys (always on shape mismatch).
        ignore_prefixes: checkpoint keys starting with these are skipped (e.g. ``"track_head."``).
        allow_download: let ``huggingface_hub`` download when the id is not cached.
    Returns:
        ``{"missing": [...], "unexpected": [...], "ignored": [...]}``.
    """
    targets = model.state_dict(keep_vars=True)
    if isinstance(weights, Mapping):
        source: str = "state dict"
        items: Iterator[tuple[str, Any]] = ((k, (lambda v=v: v)) for k, v in weights.items())
    else:
        path = resolve_weights(weights, allow_download)
        source = str(path)
        items = iter_checkpoint(path)
    loaded: set[str] = set()
    unexpected: list[str] = []
    ignored: list[str] = []
    bad_shape: list[str] = []
    with torch.no_grad():
        for key, get in items:
            if any(key.startswith(p) for p in ignore_prefixes):
                ignored.append(key)
                continue
            if key not in targets:
                unexpected.append(key)
                continue
            t = get()
            dst = targets[key]
            if tuple(t.shape) != tuple(dst.shape):
                bad_shape.append(f"{key} {list(t.shape)} vs model {list(dst.shape)}")
                continue
            dst.copy_(t.to(dtype=dst.dtype))  # per-tensor dtype cast; device handled by copy_
            loaded.add(key)
    missing = [k for k in targets if k not in loaded]
    if bad_shape:
        raise CheckpointError(f"{source}: {len(bad_shape)} shape mismatch(es): {_summary(bad_shape, 4)}")
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_summary(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_summary(unexpected)}")
        raise CheckpointError(f"{source} does not match the model: " + "; ".join(parts))
    if ignored:
        log.info("skipped %d checkpoint tensors under %s", len(ignored), ", ".join(ignore_prefixes))
    log.info("loaded %d tensors from %s", len(loaded), source)
    return {"missing": missing, "unexpected": unexpected, "ignored": ignored}


def has_weights(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds one of the weight files :func:`resolve_weights` looks for (one file or shards)."""
    return any((Path(folder) / name).is_file() for name in CANDIDATES)


def save_state_dict(
    state: Mapping[str, torch.Tensor], folder: str | os.PathLike[str], max_shard_size: int | str | None = None
) -> list[Path]:
    """Write ``state`` as ``model.safetensors``, or as shards + ``model.safetensors.index.json`` when it is
    larger than ``max_shard_size`` (bytes or e.g. ``"15MB"``; the split is ``huggingface_hub``'s).

    Each file is written atomically. A sharded save removes the old index first and writes the new one after its
    shards, and files of an earlier save in the other layout (or shards no longer named) are removed last: a save
    cut off midway leaves the earlier one-file weights or no index, never shards of two saves under one index.
    Returns the written files.
    """
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    from vist3a.io_utils import atomic_path, atomic_write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    split = split_torch_state_dict_into_shards(dict(state), max_shard_size=max_shard_size or 2**62)
    index = out / "model.safetensors.index.json"
    if split.is_sharded:
        index.unlink(missing_ok=True)  # the shards below may overwrite those it names
    written = []
    for name, keys in split.filename_to_tensors.items():
        with atomic_path(out / name) as tmp:
            save_file({k: state[k] for k in keys}, str(tmp))
        written.append(out / name)
    if split.is_sharded:
        doc = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}  # metadata: total_size
        atomic_write_text(index, json.dumps(doc, indent=1) + "\n")
        written.append(index)
    stale = [f for f in out.glob("model*.safetensors") if f not in written]
    for f in stale + ([index] if not split.is_sharded else []):
        f.unlink(missing_ok=True)
    return written
