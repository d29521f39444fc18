"""End-to-end text-to-3D benchmark at the official size with random weights (CUDA).

Wan 2.1 1.3B DiT (bf16) + Wan VAE (fp32) + a random UMT5-XXL text encoder (real size, bf16, with a
word-hash stand-in tokenizer since no tokenizer files are available offline; ``--no-umt5`` uses random
prompt embeddings instead and reports text encoding as skipped) + the official stitched AnySplat decoder
(random, fp32 weights, bf16 autocast). 13 frames at 512², 50 UniPC steps with CFG 7.5, flow shift 5,
recon input 448², default export (scene.ply at SH degree 0, cameras.json, trajectory video of 121
frames and orbit video of 120 frames at 448², gsplat).

Reports seconds per stage (text encoding, denoising, VAE decode, stitched decode, export), the peak
CUDA memory, and the ratio of the denoising time to its FLOP floor:

    FLOPs per DiT forward = N · [ 8·L·d² + 4·L²·d          (self-attention: q,k,v,o projections; QKᵀ and AV)
                                 + 4·L·d² + 4·Lt·d² + 4·L·Lt·d   (cross-attention: q,o; k,v on text; QKᵀ, AV)
                                 + 4·L·d·f ]               (feed-forward, two matmuls)
    L = T'·(H/16)·(W/16) = 4·32·32 = 4096 video tokens, Lt = 512 text tokens, d = 1536, f = 8960, N = 30;
    total = FLOPs per forward × 2 (CFG) × steps;  floor = total / (measured bf16 matmul rate).

(patch embedding, time/text embedders and the output head are < 0.1 % and left out). Then the peak
memory of one generation (2 steps: the peak does not depend on the step count) per low-VRAM mode.

    python benchmarks/bench_generate.py --out benchmarks/results/generate_h100.json      # < 6 min on an H100
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import torch

try:
    import vist3a  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vist3a.io_utils import atomic_write_text
from vist3a.models.text import TextEncoder, umt5_xxl
from vist3a.models.video import WAN_13B_DIT, WAN_14B_DIT, wan21_t2v_1_3b, wan21_t2v_14b
from vist3a.pipelines.export import export_scene
from vist3a.pipelines.text_to_3d import GenerationSettings, TextTo3DPipeline
from vist3a.stitching.stitched import anysplat_stitched

GiB = 1024**3
PROMPT = "a cozy wooden cabin in a snowy pine forest at dusk, warm light in the windows"


class WordHashTokenizer:
    """Stand-in for the UMT5 tokenizer (no files offline): one id per word (crc32 mod vocab), padded."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self, prompts: list[str], max_length: int, **_: Any) -> dict[str, torch.Tensor]:
        ids = torch.zeros(len(prompts), max_length, dtype=torch.long)
        mask = torch.zeros(len(prompts), max_length, dtype=torch.long)
        for i, p in enumerate(prompts):
            toks = [zlib.crc32(w.encode()) % (self.vocab - 2) + 2 for w in p.split()][: max_length - 1] + [1]
            ids[i, : len(toks)] = torch.tensor(toks)
            mask[i, : len(toks)] = 1
        return {"input_ids": ids, "attention_mask": mask}


def dit_flops(cfg: dict[str, Any], frames: int, height: int, width: int, text_tokens: int, steps: int, cfg_batches: int = 2) -> dict[str, float]:
    """FLOPs of the denoising loop from the architecture numbers (see the module docstring)."""
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    f, n = cfg["ffn_dim"], cfg["num_layers"]
    lat_t = 1 + (frames - 1) // 4
    L = lat_t * (height // 16) * (width // 16)
    Lt = text_tokens
    per_layer = 8 * L * d * d + 4 * L * L * d + 4 * L * d * d + 4 * Lt * d * d + 4 * L * Lt * d + 4 * L * d * f
    fwd = n * per_layer
    return {"tokens": L, "text_tokens": Lt, "flops_per_forward": fwd, "flops_total": fwd * cfg_batches * steps}


def bf16_rate(size: int = 8192, reps: int = 30) -> float:
    """Measured dense bf16 matmul rate of this card (FLOP/s)."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / reps
    del a, b
    return 2 * size**3 / dt


def _reset(pipe: TextTo3DPipeline, dev: torch.device) -> None:
    v = pipe.video
    v.disable_cpu_offload()
    v.disable_vae_tiling()
    v.to(dev)
    pipe.low_vram = False
    gc.collect()
    torch.cuda.empty_cache()


def _clear_text_cache(pipe: TextTo3DPipeline) -> None:
    if pipe.video.text_encoder is not None:
        pipe.video.text_encoder.clear_cache()  # so every run really encodes its prompts


def peak_of(pipe: TextTo3DPipeline, kw: dict[str, Any]) -> tuple[float, float]:
    _clear_text_cache(pipe)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    pipe(PROMPT, progress=False, keep_frames=False, **kw)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / GiB, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/generate.json")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--no-umt5", action="store_true", help="random prompt embeddings instead of a random UMT5-XXL")
    ap.add_argument("--no-modes", action="store_true", help="skip the low-VRAM mode sweep")
    ap.add_argument("--dit", choices=("1.3b", "14b"), default="1.3b", help="Wan 2.1 DiT size")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # a CUDA device (cpu: for mocked dry runs)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    dev = torch.device(args.device)
    t_start = time.perf_counter()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "python": platform.python_version(),
        "setting": f"Wan2.1-{args.dit.upper()} DiT bf16 + Wan VAE fp32 + stitched AnySplat (random weights); 13 frames 512², "
                   f"{args.steps} UniPC steps, CFG 7.5, flow shift 5, recon 448²",
    }  # fmt: skip
    rate = bf16_rate()
    result["bf16_matmul_tflops"] = round(rate / 1e12, 1)

    t0 = time.perf_counter()
    builder = wan21_t2v_14b if args.dit == "14b" else wan21_t2v_1_3b
    video = builder(device=dev, dtype=torch.bfloat16, components=("vae", "transformer"), seed=0)
    if not args.no_umt5:
        te = umt5_xxl(device=dev, dtype=torch.bfloat16, max_length=512)
        video.text_encoder = TextEncoder(te.encoder, WordHashTokenizer(te.encoder.config.vocab_size), 512, "random")
    decoder = anysplat_stitched(device=dev, weights=None, recon_weights=None)
    pipe = TextTo3DPipeline(video, decoder, GenerationSettings(steps=args.steps), name="bench")
    result["build_s"] = round(time.perf_counter() - t0, 1)
    kw: dict[str, Any] = {}
    if args.no_umt5:
        g = torch.Generator().manual_seed(0)
        cond = torch.zeros(1, 512, 4096)
        cond[:, :40] = torch.randn(1, 40, 4096, generator=g) * 0.2
        neg = torch.zeros(1, 512, 4096)
        neg[:, :90] = torch.randn(1, 90, 4096, generator=g) * 0.2
        kw = {"prompt_embeds": cond.to(dev, torch.bfloat16), "negative_embeds": neg.to(dev, torch.bfloat16)}
    result["text_encoder"] = "random embeddings (skipped)" if args.no_umt5 else "random UMT5-XXL bf16, word-hash tokenizer"

    # warm-up (kernels, allocator), then the timed run
    pipe(PROMPT, steps=2, progress=False, **kw)
    torch.cuda.synchronize()
    _clear_text_cache(pipe)
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = pipe(PROMPT, progress=True, **kw)
    torch.cuda.synchronize()
    gen_s = time.perf_counter() - t0
    peak_gen = torch.cuda.max_memory_allocated() / GiB
    with tempfile.TemporaryDirectory() as d:
        t1 = time.perf_counter()
        try:
            rep = export_scene(d, res.gaussians, res.cameras, formats=("ply",), device=dev, progress=False)
        except ImportError as exc:  # no ffmpeg on the machine: time the scene export without videos
            print(f"videos skipped ({exc}); timing scene files only")
            result["export_note"] = "videos skipped: imageio-ffmpeg not installed on the benchmark machine"
            t1 = time.perf_counter()
            rep = export_scene(d, res.gaussians, res.cameras, formats=("ply",), device=dev, progress=False,
                               frames_per_view=0, orbit_frames=0)
        torch.cuda.synchronize()
        export_s = time.perf_counter() - t1
        ply_mb = (Path(d) / "scene.ply").stat().st_size / 1e6
    peak_all = torch.cuda.max_memory_allocated() / GiB
    stages = {k: round(v, 3) for k, v in res.timings.items()}
    stages["export"] = round(export_s, 3)
    result["stages_s"] = stages
    result["export_detail_s"] = {k: round(v, 3) for k, v in rep.timings.items()}
    result["end_to_end_s"] = round(gen_s + export_s, 3)
    result["gaussians"] = len(res.gaussians)
    result["ply_mb"] = round(ply_mb, 1)
    result["peak_gib_generation"] = round(peak_gen, 2)
    result["peak_gib_with_export"] = round(peak_all, 2)
    fl = dit_flops(WAN_14B_DIT if args.dit == "14b" else WAN_13B_DIT, 13, 512, 512, 512, args.steps)
    floor = fl["flops_total"] / rate
    result["dit_flops"] = fl
    result["denoising_floor_s"] = round(floor, 3)
    result["denoising_over_floor"] = round(res.timings["denoising"] / floor, 2)

    # peak memory per low-VRAM mode (2 steps each)
    modes: dict[str, Any] = {}
    if not args.no_modes:
        setups = {
            "none": lambda: None,
            "text_encoder_offload": lambda: pipe.video.enable_text_encoder_cpu_offload(dev),
            "dit_offload": lambda: pipe.video.enable_dit_cpu_offload(dev),
            "vae_tiling": lambda: pipe.video.enable_vae_tiling(),
            "all (--low-vram)": lambda: pipe.enable_low_vram(dev),
        }
        for name, setup in setups.items():
            _reset(pipe, dev)
            setup()
            try:
                peak, secs = peak_of(pipe, {"steps": 2, **kw})
                modes[name] = {"peak_gib": round(peak, 2), "seconds_2_steps": round(secs, 2)}
            except torch.cuda.OutOfMemoryError as e:
                modes[name] = {"error": f"OOM {str(e)[:120]}"}
            print(name, modes[name], flush=True)
        _reset(pipe, dev)
    result["low_vram_modes"] = modes
    result["bench_wall_s"] = round(time.perf_counter() - t_start, 1)

    lines = [
        f"## vist3a generate — end to end ({result['device']}, torch {result['torch']})",
        "",
        f"{result['setting']}; text encoder: {result['text_encoder']}.",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in stages.items()],
        f"| **end to end** | **{result['end_to_end_s']:.3f}** |",
        "",
        f"- Gaussians: {result['gaussians']:,}; scene.ply (SH 0): {result['ply_mb']} MB",
        f"- peak CUDA memory: generation {result['peak_gib_generation']} GiB, with export {result['peak_gib_with_export']} GiB",
        f"- DiT FLOPs: {fl['flops_total'] / 1e15:.3f} PFLOP (L={fl['tokens']}, Lt={fl['text_tokens']}, ×2 CFG × {args.steps});"
        f" measured bf16 matmul {result['bf16_matmul_tflops']} TFLOP/s → floor {floor:.2f} s;"
        f" denoising {res.timings['denoising']:.2f} s = **{result['denoising_over_floor']}× the floor**",
        "",
    ]
    if modes:
        lines += ["| low-VRAM mode | peak GiB | s (2 steps) |", "|---|---|---|"]
        for k, v in modes.items():
            lines.append(f"| {k} | {v.get('peak_gib', v.get('error'))} | {v.get('seconds_2_steps', '')} |")
    md = "\n".join(lines)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), md + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
