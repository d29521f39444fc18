"""Lay device-run outputs out as a mini asset folder (the layout of ``vist3a/assets/mini``), in fp16.

Parts not given are taken from ``--base`` (the shipped set), so the folder is a drop-in for
``VIST3A_MINI_ASSETS=DIR`` (generate, eval text-to-3d, the claim table) and, once it has been measured
better, for ``src/vist3a/assets/mini`` itself (``--out src/vist3a/assets/mini`` with the shipped folder
as base works: each part is written to a temp folder and renamed).

    python scripts/pack_mini_candidate.py --out runs/cand/new \\
        --anysplat runs/mini/recon/anysplat_mini --stitched runs/mini/stitch_dg_recon \\
        [--transformer runs/mini/align/wan_mini/transformer]

The reconstructor's and stitched decoder's float tensors are cast to fp16 (the shipped dtype; the loaders
cast back to float32 on the CPU); the diffusers folders are copied as exported (their fp32-kept modules stay);
``stitched.json`` points at the shipped parts (``"shipped"``) instead of the device's run paths, and
the training checkpoints and TensorBoard logs of a stitch run are left out.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vist3a.mini_assets import SHARD_SIZE
from vist3a.models.checkpoint import has_weights, iter_checkpoint, resolve_weights, save_state_dict

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "vist3a" / "assets" / "mini"
MODEL_FILE = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")


def fp16_copy(src: Path, dst: Path) -> None:
    """Copy a safetensors file with every float32/float64 tensor cast to float16 (metadata kept)."""
    from safetensors import safe_open

    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    save_file(fp16(load_file(str(src)), src), str(dst), metadata=meta)


def fp16(state: dict[str, torch.Tensor], src: Path) -> dict[str, torch.Tensor]:
    """``state`` with every float32/float64 tensor cast to float16; non-finite results stop the packing."""
    state = {k: v.half() if v.is_floating_point() and v.dtype != torch.float16 else v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise SystemExit(f"{src}: non-finite values after the fp16 cast in {bad[0]} (and {len(bad) - 1} more)")
    return state


def copy_part(src: Path, dst: Path, cast: bool, skip: tuple[str, ...] = (), shard: bool = False) -> None:
    """Copy folder ``src`` to ``dst`` (replacing it atomically), safetensors in fp16 if ``cast``, ``skip`` left out.

    ``shard``: the folder's model weights (``model.safetensors`` or shards) are re-written in fp16 shards of at most
    ``SHARD_SIZE`` (the shipped layout), whatever layout the source has.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; package data must be world-readable
    try:
        if shard:
            state = {k: get() for k, get in iter_checkpoint(resolve_weights(src, allow_download=False))}
            save_state_dict(fp16(state, src), tmp, SHARD_SIZE)
        for f in sorted(src.rglob("*")):
            rel = f.relative_to(src)
            if f.is_dir() or rel.parts[0] in skip or (shard and MODEL_FILE.fullmatch(f.name)):
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            if cast and f.suffix == ".safetensors":
                fp16_copy(f, tmp / rel)
            elif f.name == "stitched.json":
                doc = json.loads(f.read_text())
                doc["video_weights"] = doc["recon_weights"] = "shipped"
                (tmp / rel).write_text(json.dumps(doc, indent=2) + "\n")
            else:
                shutil.copy2(f, tmp / rel)
        old = dst.with_name(dst.name + ".old")
        if dst.exists():
            dst.rename(old)
        tmp.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="the asset folder to write")
    p.add_argument("--base", type=Path, default=SHIPPED, help="where parts not given come from (the shipped set)")
    p.add_argument("--anysplat", type=Path, help="anysplat-mini export (model.safetensors + vist3a_model.json)")
    p.add_argument("--stitched", type=Path, help="stitch train output (stitched.safetensors + stitched.json)")
    p.add_argument("--transformer", type=Path, help="a DiT transformer/ folder (diffusers format)")
    p.add_argument("--vae", type=Path, help="a VAE vae/ folder (diffusers format)")
    a = p.parse_args(argv)
    parts = {  # asset sub-folder -> (given source, marker file it must hold)
        "anysplat-mini": (a.anysplat, "model.safetensors"),
        "stitched-mini": (a.stitched, "stitched.json"),
        "wan-mini/transformer": (a.transformer, "config.json"),
        "wan-mini/vae": (a.vae, "config.json"),
    }
    for name, (src, marker) in parts.items():
        src = src if src is not None else a.base / name
        if not ((src / marker).is_file() or (marker == "model.safetensors" and has_weights(src))):
            print(f"pack_mini_candidate: {src} has no {marker} (needed for {name})", file=sys.stderr)
            return 2
        if src.resolve() == (a.out / name).resolve():
            continue  # already in place (--out is the base)
        copy_part(src, a.out / name, cast=not name.startswith("wan-mini"), skip=("checkpoints", "tb"),
                  shard=name == "anysplat-mini")  # fmt: skip
    for f in (a.base / "wan-mini").glob("*.json"):  # video_model.json
        if not (a.out / "wan-mini" / f.name).exists():
            shutil.copy2(f, a.out / "wan-mini" / f.name)
    total = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"wrote {a.out} ({total / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
