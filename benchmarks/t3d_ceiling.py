"""Where are the captions lost: in the DiT, or after it? The text-to-3D judge of the mini set with the DiT taken out.

`vist3a eval text-to-3d --model mini --world N` scores scenes generated from the captions of world set 7919. This
runs the same evaluation (same captions, scene names, views, judge and consistency) on two sources that skip the DiT:

- ``true_latent``: each caption's own world clip (13 frames at 256², as the DiT's training clips), encoded by the
  mini VAE (posterior mean) and passed through the pipeline's own post-denoising path
  (`TextTo3DPipeline.latents_to_3d`: VAE decode, stitched decoder, camera guard). This is what a perfect DiT
  (one that returned the true clip's latent) would score: the ceiling of the VAE + stitched decoder + judge.
- ``true_latent_rgb`` (``--true-rgb``): the same, with the stitched decoder's RGB branch given the true frames
  instead of their VAE decode: what a VAE decoder that kept every colour would add.
- ``teacher`` (``--teacher``): the clip's true frames through anysplat-mini itself (the stitched decoder's
  teacher, pixels in, no VAE and no stitch): what the reconstruction network can give these scenes at all. Against
  ``true_latent`` it splits the 3D stage's loss between the reconstruction network and the stitch.
- ``frames``: the judge on 8 evenly spaced frames of the world clip itself (first = the caption's view): the ceiling
  of the judge on these captions.
- ``generated_frames`` (``--generated``): the judge on 8 evenly spaced frames of the DiT's own decoded video, the
  same generation (caption, seed) as `eval text-to-3d`'s: what the scenes could score if the 3D stage lost nothing.
- ``generated_teacher`` (``--teacher --generated``): the DiT's decoded video of that generation through
  anysplat-mini (the two-stage path, pixels in): against `eval text-to-3d`'s 3D scenes it splits what the 3D stage
  loses on generated latents between the reconstruction network and the stitch.

    VIST3A_MINI_ASSETS=DIR python benchmarks/t3d_ceiling.py --world 12 --out runs/ceiling --json OUT.json
    python benchmarks/t3d_ceiling.py --world 24 --teacher --teacher-weights DIR --out runs/teacher --json OUT.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


class TrueLatentPipeline:
    """Stands in for the mini pipeline in `vist3a.eval.text_to_3d.evaluate`: a prompt of the world set gives the
    3D scene of its own clip's VAE latent (no text encoder, no DiT)."""

    def __init__(self, pipe: Any, samples: dict[str, Any], device: Any, true_rgb: bool = False, teacher: Any = None,
                 teacher_views: int = 13, generated: bool = False) -> None:  # fmt: skip
        self.pipe, self.samples, self.device, self.true_rgb, self.teacher = pipe, samples, device, true_rgb, teacher
        self.teacher_views, self.generated = teacher_views, generated
        self.settings = pipe.settings
        self.name = "mini:true-latent" if teacher is None else "mini:generated-teacher" if generated else "mini:teacher"

    def __call__(self, prompt: str, seed: int = 0, progress: bool = False, **_: Any) -> Any:
        import torch

        from vist3a.pipelines.text_to_3d import TextTo3DResult

        clip = self.samples[prompt].render(self.device).rgb  # [T,3,H,W] in [0,1]
        if self.generated:  # the DiT's decoded video of eval text-to-3d's generation (same caption and seed)
            clip = generated_frames(self.pipe, prompt, seed).to(self.device)
        timings: dict[str, float] = {}
        if self.teacher is not None:  # pixels straight into the reconstruction network
            from vist3a.stitching.stitched import rgb_branch_input

            size = self.teacher.config.image_size
            clip = clip[torch.linspace(0, len(clip) - 1, self.teacher_views).round().long()]
            with torch.no_grad():
                rec = self.teacher.reconstruct(rgb_branch_input(clip[None].to(self.device), (size, size)),
                                               camera_guard_deg=self.pipe.settings.camera_guard_deg)  # fmt: skip
            return TextTo3DResult(prompt=prompt, full_prompt=prompt, gaussians=rec.gaussians[0], cameras=rec.cameras[0],
                                  frames=clip.cpu(), latents=torch.zeros(0), depth=rec.depth[0].cpu(), seed=seed,
                                  timings=timings, camera_guarded=bool(rec.guarded and rec.guarded[0]))  # fmt: skip
        video = (clip.permute(1, 0, 2, 3)[None] * 2 - 1).to(self.device)  # [1,3,T,H,W] in [-1,1]
        with torch.no_grad():
            raw = self.pipe.video.encode(video, sample=False)
            frames, rec = self.pipe.latents_to_3d(raw, timings)
            if self.true_rgb:  # as latents_to_3d, with the true frames in the RGB branch
                from vist3a.pipelines.text_to_3d import recon_input_size
                from vist3a.stitching.stitched import rgb_branch_input

                dec, frames = self.pipe.decoder, clip.to(self.device)
                small = rgb_branch_input(frames[None], recon_input_size(dec, *raw.shape[-2:]))
                rec = dec.reconstruct(raw, small, camera_guard_deg=self.pipe.settings.camera_guard_deg)
        return TextTo3DResult(prompt=prompt, full_prompt=prompt, gaussians=rec.gaussians[0], cameras=rec.cameras[0],
                              frames=frames.cpu(), latents=raw[0].cpu(), depth=rec.depth[0].cpu(), seed=seed,
                              timings=timings, camera_guarded=bool(rec.guarded and rec.guarded[0]))  # fmt: skip


_GENERATED: dict[tuple[str, int], Any] = {}


def generated_frames(mini: Any, prompt: str, seed: int) -> Any:
    """The mini pipeline's decoded video [T,3,H,W] in [0,1] for (prompt, seed), generated once per run."""
    if (prompt, seed) not in _GENERATED:
        _GENERATED[prompt, seed] = mini(prompt, seed=seed, progress=False).frames.cpu()
    return _GENERATED[prompt, seed]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world", type=int, default=12, help="the first N captions of the held-out world set")
    p.add_argument("--seed", type=int, default=None, help="world seed (default: the held-out one, 7919)")
    p.add_argument("--views", type=int, default=8, help="frames of the world clip the judge reads (frames row)")
    p.add_argument("--out", type=Path, required=True, help="evaluation folder of the true_latent row")
    p.add_argument("--json", type=Path, default=None, help="also write both rows here")
    p.add_argument("--true-rgb", action="store_true", help="the decoder's RGB branch sees the true frames")
    p.add_argument("--teacher", action="store_true", help="the teacher row instead: true frames through anysplat-mini")
    p.add_argument("--teacher-weights", default="shipped", help="anysplat-mini weights of the teacher row")
    p.add_argument("--teacher-views", type=int, default=13, help="evenly spaced clip frames the teacher row sees")
    p.add_argument("--generated", action="store_true", help="also the generated_frames row (the DiT's decoded frames);"
                   " with --teacher, the teacher row reads those frames instead of the world clip's")
    p.add_argument("--text-cache", default=None, help="the DiT's prompt embeddings from this file (a machine without "
                   "MiniLM; `vist3a eval text-to-3d --model mini --world N --write-text-cache FILE`)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    if a.teacher and a.true_rgb:
        p.error("--teacher and --true-rgb are two different rows: run them one at a time")

    import torch

    import vist3a
    from vist3a.eval import text_to_3d as t23d
    from vist3a.eval.gen_metrics import build_metric
    from vist3a.pipelines.export import write_json
    from vist3a.train import HELD_OUT_SEED
    from vist3a.world.sample import make_sample

    device = torch.device(a.device)
    seed = HELD_OUT_SEED if a.seed is None else a.seed
    scenes = t23d.world_scenes(a.world, seed, 12413)
    samples = {s.prompt: make_sample(s.info["index"], seed=seed, frames=13, size=256) for s in scenes}
    if len(samples) != len(scenes):
        raise SystemExit("two world scenes share a prompt; the true-latent row needs one clip per prompt")

    judge = build_metric("judge", device)

    def judge_frames(rgb: torch.Tensor, s: Any) -> dict[str, float]:  # rgb [T,3,H,W] in [0,1]: a.views of them
        pick = torch.linspace(0, len(rgb) - 1, a.views).round().long()
        return {k: v[0] for k, v in judge(rgb[pick], s.prompt, s.info).items()}

    rows: dict[str, list[dict[str, float]]] = {"frames": [judge_frames(samples[s.prompt].render().rgb, s) for s in scenes]}
    mini = vist3a.load_pipeline("mini", device=device, text_cache=a.text_cache)
    if a.generated:
        rows["generated_frames"] = [judge_frames(generated_frames(mini, s.prompt, s.seed), s) for s in scenes]
    teacher = vist3a.registry.build("anysplat-mini", weights=a.teacher_weights, device=device).eval() if a.teacher else None
    pipe = TrueLatentPipeline(mini, samples, device, a.true_rgb, teacher, a.teacher_views, generated=a.teacher and a.generated)
    res = t23d.evaluate(scenes, [judge], a.out, pipe=pipe, device=device, settings={"source": f"world:{seed}",
                        "model": pipe.name}, progress=True)  # fmt: skip
    rows[("generated_teacher" if a.generated else "teacher") if a.teacher else "true_latent_rgb" if a.true_rgb else "true_latent"] = [{k: float(r[k]) for k in r if k.startswith(("judge_", "consistency"))} for r in res.per_scene]

    def mean(rs: list[dict[str, float]], k: str) -> float:
        vals = [r[k] for r in rs if k in r and r[k] == r[k]]
        return sum(vals) / len(vals) if vals else float("nan")

    cols = ("judge_entity", "judge_attribute", "judge_relation", "judge_overall", "consistency_psnr")
    summary = {row: {k: round(mean(rs, k), 2) for k in cols} for row, rs in rows.items()}
    for row, m in summary.items():
        print(f"{row:12s} " + "  ".join(f"{k.replace('judge_', '')} {v}" for k, v in m.items()))
    if a.json:
        write_json(a.json, {"args": {k: str(v) for k, v in vars(a).items()}, "summary": summary, "per_scene": rows,
                            "prompts": [s.prompt for s in scenes]})  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
