"""Benchmark the video backend at official sizes with random weights (CUDA).

Wan 2.1 VAE + 1.3B DiT (and optionally the 14B DiT), 13 frames at 512² (latent [1,16,4,64,64]):

- VAE encode (no grad), VAE decode (no grad; plain and tiled),
- VAE decode forward+backward to the latent: plain diffusers decode vs our per-frame checkpointed
  decode (and the max difference of their outputs and gradients),
- one DiT step with classifier-free guidance (batch 2, bf16, 512 text tokens), and one DiT
  forward+backward with diffusers' gradient checkpointing (the shape of a reward-alignment step),
- UMT5-XXL text encoding of 2 × 512 tokens (random ids; bf16),

with wall time (median of repeats, after a warm-up) and peak CUDA memory of each. Writes JSON and a
Markdown table next to it.

    python benchmarks/bench_video.py --out benchmarks/results/video.json            # < 3 min on an H100
    python benchmarks/bench_video.py --out benchmarks/results/video_14b.json --with-14b
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

try:
    import vist3a  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.io_utils import atomic_write_text
from vist3a.models.video import VideoModel, wan21_t2v_1_3b, wan21_t2v_14b

GiB = 1024**3


def measure(name: str, fn: Callable[[], Any], repeats: int, rows: list[dict[str, Any]], **extra: Any) -> Any:
    """Run ``fn`` once to warm up and ``repeats`` times timed; record median seconds and peak memory."""
    torch.cuda.synchronize()
    gc.collect()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    row: dict[str, Any] = {"name": name, **extra}
    try:
        out = fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            del out
            t0 = time.perf_counter()
            out = fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        row.update(
            seconds=round(statistics.median(times), 4),
            peak_gib=round(torch.cuda.max_memory_allocated() / GiB, 3),
            peak_over_resident_gib=round((torch.cuda.max_memory_allocated() - base) / GiB, 3),
            resident_gib=round(base / GiB, 3),
        )
    except torch.cuda.OutOfMemoryError as e:
        out = None
        row.update(seconds=None, peak_gib=None, error=f"CUDA OOM: {str(e).splitlines()[0][:160]}")
    rows.append(row)
    print(json.dumps(row), flush=True)
    gc.collect()
    torch.cuda.empty_cache()
    return out


def bench_vae(m: VideoModel, args: argparse.Namespace, rows: list[dict[str, Any]], tag: str) -> None:
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    T, S = args.frames, args.size
    video = torch.rand(1, 3, T, S, S, generator=g, device=dev) * 2 - 1
    with torch.no_grad():
        raw = measure(f"vae encode [{tag}]", lambda: m.encode(video, sample=False), args.repeats, rows)
    if raw is None:
        raw = torch.randn(m.latent_shape(1, T, S, S), device=dev)
    raw = raw.detach() * 0.5  # keep decoded values inside (-1, 1) so the clamp does not zero gradients
    with torch.no_grad():
        measure(f"vae decode [{tag}]", lambda: m.decode(raw), args.repeats, rows)
        m.enable_vae_tiling()
        measure(f"vae decode tiled 256/192 [{tag}]", lambda: m.decode(raw), args.repeats, rows)
        m.disable_vae_tiling()

    w = torch.randn(1, 3, T, S, S, generator=g, device=dev)

    def fwd_bwd(checkpoint: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = raw.clone().requires_grad_(True)
        try:
            y = m.decode(z, checkpoint=checkpoint)
            (y * w).sum().backward()
        finally:  # an OOM mid-decode leaves the VAE's causal feature cache holding the graph
            if hasattr(m.vae, "clear_cache"):
                m.vae.clear_cache()
            m.vae.zero_grad(set_to_none=True)
        return y.detach(), z.grad

    # checkpointed first: a plain fwd+bwd that runs out of memory must not distort its numbers
    ckpt = measure(f"vae decode fwd+bwd checkpointed [{tag}]", lambda: fwd_bwd(True), 1, rows)
    plain = measure(f"vae decode fwd+bwd plain [{tag}]", lambda: fwd_bwd(False), 1, rows)
    if plain is not None and ckpt is not None:
        rows[-1]["max_abs_diff_output"] = float((plain[0] - ckpt[0]).abs().max())
        rows[-1]["max_abs_diff_grad"] = float((plain[1] - ckpt[1]).abs().max())
        rows[-1]["grad_abs_max"] = float(plain[1].abs().max())
        print(json.dumps(rows[-1]), flush=True)
    m.vae.zero_grad(set_to_none=True)


def bench_dit(m: VideoModel, args: argparse.Namespace, rows: list[dict[str, Any]], tag: str, train: bool) -> None:
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(1)
    shape = m.latent_shape(1, args.frames, args.size, args.size)
    z = torch.randn(shape, generator=g, device=dev)
    D = m.transformer.config.text_dim
    cond = torch.randn(1, args.text_len, D, generator=g, device=dev)
    uncond = torch.randn(1, args.text_len, D, generator=g, device=dev)
    tokens = shape[2] * (shape[3] // 2) * (shape[4] // 2)
    with torch.no_grad():
        measure(
            f"DiT step with CFG, batch 2 [{tag}]",
            lambda: m.guided_velocity(z, 500.0, cond, uncond, 7.5),
            args.repeats,
            rows,
            video_tokens=tokens,
            text_tokens=args.text_len,
        )
    if train:
        m.transformer.enable_gradient_checkpointing()
        m.transformer.train()

        def step() -> torch.Tensor:
            v = m.velocity(z, 500.0, cond)
            v.float().square().mean().backward()
            m.transformer.zero_grad(set_to_none=True)
            return v.detach()

        measure(f"DiT fwd+bwd, batch 1, grad checkpointing [{tag}]", step, 1, rows, video_tokens=tokens)
        m.transformer.disable_gradient_checkpointing()
        m.transformer.eval()


def bench_text(m: VideoModel, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    enc = m.text_encoder.encoder
    g = torch.Generator(device="cuda").manual_seed(2)
    ids = torch.randint(0, enc.config.vocab_size, (2, args.text_len), generator=g, device="cuda")
    mask = torch.ones_like(ids)
    with torch.no_grad():
        measure("UMT5-XXL encode 2 prompts [bf16]", lambda: enc(input_ids=ids, attention_mask=mask).last_hidden_state,
                args.repeats, rows, text_tokens=args.text_len)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="JSON output path (a .md table is written beside it)")
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--text-len", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vae-dtypes", default="fp32,bf16", help="comma list of fp32,bf16")
    ap.add_argument("--with-14b", action="store_true", help="also one CFG step of the 14B DiT (bf16, ~29 GB)")
    ap.add_argument("--skip-text", action="store_true", help="skip the UMT5-XXL encoder (11 GB bf16)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_video.py needs a CUDA device", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()

    t0 = time.perf_counter()
    comps = ("vae", "transformer") if args.skip_text else ("vae", "transformer", "text_encoder")
    m = wan21_t2v_1_3b(device="cuda", dtype=torch.bfloat16, components=comps, seed=0)
    build_s = time.perf_counter() - t0
    print(f"built wan2.1-t2v-1.3b (random) in {build_s:.1f}s", flush=True)

    for name in [s.strip() for s in args.vae_dtypes.split(",") if s.strip()]:
        dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[name]
        m.vae.to(dt)
        bench_vae(m, args, rows, f"Wan VAE {name}")
    m.vae.to(torch.float32)
    bench_dit(m, args, rows, "Wan 1.3B bf16", train=True)
    if m.text_encoder is not None:
        bench_text(m, args, rows)
    del m
    gc.collect()
    torch.cuda.empty_cache()

    if args.with_14b:
        m14 = wan21_t2v_14b(device="cuda", dtype=torch.bfloat16, components=("vae", "transformer"), seed=0)
        bench_dit(m14, args, rows, "Wan 14B bf16", train=False)
        del m14

    meta = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "diffusers": __import__("diffusers").__version__,
        "video": f"[1,3,{args.frames},{args.size},{args.size}]",
        "text_len": args.text_len,
        "weights": "random init at official sizes",
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    atomic_write_text(args.out, json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        f"# Video backend benchmark — {meta['device']}",
        "",
        f"Random weights at official sizes; video {meta['video']}; torch {meta['torch']}, diffusers {meta['diffusers']}.",
        f"Command: `python {meta['command']}` (total {meta['total_seconds']} s).",
        "",
        "| what | seconds | peak GiB | peak over resident GiB | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        notes = {k: v for k, v in r.items() if k not in {"name", "seconds", "peak_gib", "peak_over_resident_gib", "resident_gib"}}
        lines.append(
            f"| {r['name']} | {r.get('seconds')} | {r.get('peak_gib')} | {r.get('peak_over_resident_gib')} | "
            f"{', '.join(f'{k}={v}' for k, v in notes.items())} |"
        )
    md = args.out.with_suffix(".md")
    atomic_write_text(md, "\n".join(lines) + "\n")
    print(f"wrote {args.out} and {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
