"""Held-out numbers of the shipped mini weights on CPU, recorded for the CI test (tests/test_mini_shipped.py).

    python benchmarks/mini_shipped_cpu.py --out benchmarks/results/mini_shipped_cpu.json

VAE: reconstruction PSNR (posterior mode, frames in [0, 1]) of held-out world scenes (seed 7919 = the
training seed 0 + 7919, the held-out convention of the mini trainers), 256², fp32 on CPU. The CI test
checks the 5-frame numbers (`--frames 5 --scenes 2 --out benchmarks/results/mini_shipped_cpu_5f.json`).

anysplat-mini (when it ships, or under ``$VIST3A_MINI_ASSETS``): the recon stage's own held-out evaluation
(``ReconTask.evaluate``: NVS PSNR/SSIM on the target views of 8-view clips at 224², 5 context views, rendered at the
ground-truth cameras, plus depth and camera errors) on ``--recon-scenes`` scenes, recorded under ``recon``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vist3a.eval.metrics import psnr
from vist3a.io_utils import atomic_write_text
from vist3a.mini_assets import shipped_folder
from vist3a.train import HELD_OUT_SEED
from vist3a.train.mini_vae import videos
from vist3a.world.dataset import WorldDataset


def vae_psnr(scenes: int, frames: int = 13) -> list[float]:
    """Per-scene reconstruction PSNR (dB) of the shipped VAE on the first ``scenes`` held-out scenes."""
    from vist3a import registry

    vm = registry.build("wan-mini", components=("vae",))
    ds = WorldDataset(scenes, seed=HELD_OUT_SEED, frames=frames, size=256)
    out = []
    with torch.no_grad():
        for i in range(scenes):
            video = videos(ds, [i], torch.device("cpu"))
            z = vm.vae.encode(video).latent_dist.mode()
            rec = vm.vae.decode(z).sample.float().clamp(-1, 1)
            frames = lambda v: ((v + 1) / 2).permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731
            out.append(float(psnr(frames(rec), frames(video)).mean()))
    return out


def recon_eval(scenes: int, frames: int = 8, context: int = 5, size: int = 224) -> dict[str, float]:
    """The recon stage's held-out metrics of the shipped anysplat-mini (see the module docstring)."""
    import tempfile

    from vist3a import registry
    from vist3a.train.mini_loop import MiniTrainConfig
    from vist3a.train.mini_recon import ReconTask

    model = registry.build("anysplat-mini").eval()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MiniTrainConfig(out=tmp, steps=1, batch=1, train_scenes=1, eval_scenes=scenes, frames=frames, size=size,
                              extra={"context": context})  # fmt: skip
        with torch.no_grad():
            return ReconTask(model, cfg, torch.device("cpu")).evaluate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--frames", type=int, default=13, help="frames per clip, 1+4k (the CI test uses 5)")
    ap.add_argument("--recon-scenes", type=int, default=1, help="held-out scenes for anysplat-mini (0 = skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if shipped_folder("wan-mini") is None:
        raise SystemExit("no shipped wan-mini weights in this install")
    t = time.perf_counter()
    vals = vae_psnr(args.scenes, args.frames)
    doc = {"date": time.strftime("%Y-%m-%d"), "device": "cpu", "torch": torch.__version__,
           "held_out_seed": HELD_OUT_SEED, "frames": args.frames, "size": 256, "vae_psnr_per_scene": vals,
           "vae_psnr_mean": sum(vals) / len(vals), "seconds": time.perf_counter() - t}  # fmt: skip
    if args.recon_scenes and shipped_folder("anysplat-mini") is not None:
        t = time.perf_counter()
        doc["recon"] = {"scenes": args.recon_scenes, "frames": 8, "context": 5, "size": 224,
                        **recon_eval(args.recon_scenes), "seconds": time.perf_counter() - t}  # fmt: skip
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
