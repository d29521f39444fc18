#!/usr/bin/env bash
# Device runs of the mini model (issues 9-10). Each block is one device call of at most 10 minutes on the
# H100 (`--minutes` stops a stage with a checkpoint and an export; repeat with `--resume`). Calls run back to
# back on one warm machine so that runs/ (checkpoints, latent and clip caches) persists between them.
# What ran on 2026-11-25 and what it measured: docs/mini.md ("Device runs of 2026-11-25").
#   session 2 (2026-11-25): scripts/device/mini_piece1.sh (VAE || recon), resumes, mini_piece4.sh (DiT cache +
#   DiT), mini_piece5.sh (layer search + stitch train || DiT), stitch resume + benchmarks/mini_claim.py.
#   session 3 (2026-11-25): scripts/device/mini_s3_piece1.sh twice (VAE A/B || recon2), VAE-A || recon2 resumed,
#   mini_s3_piece4.sh (DiT cache + DiT || layer search + stitch train r16). Candidates in runs/mini_s3/assets
#   (branch weights-s3); only the VAE ships.
#   session 4 (2026-12-02): scripts/device/mini_s4_call.sh PHASE=1..3 -> the shipped set (docs/mini.md).
#   session 5 (2026-12-03): no device time; CPU claim table, guidance sweep, CPU alignment cost (199 s/step).
#   session 6 (2026-12-03): scripts/device/mini_s6_call.sh PHASE=1-2 (recon continued, 415-step re-stitch, 316
#   alignment steps) and mini_s6_claim16.sh (claim table on 16 scenes); nothing new shipped (docs/mini.md).
# Next session: scripts/device/mini_s7_call.sh PHASE=1..3 (recon continued || re-stitch with depth_grad 0.05;
# alignment resumed across two calls; re-stitch on the new recon; claim tables; candidates packed).
# The blocks below are the generic recipe (session 3's plan), kept as the reference commands.
set -euo pipefail
source scripts/device/mini_setup.sh
R=${RUNS:-runs/mini}
# Machine 1, three ~9-minute calls (carry .whl and .carry/recon2 = runs/mini_s3/assets/anysplat-mini):
#  VAE: continue the shipped VAE (session 3's run A) with the same recipe; its chroma error was still falling
python3 -m vist3a world train-mini --stage vae --init shipped --object-weight 3 --out $R/vae --steps 20000 --batch 4 \
  --lr 1e-4 --warmup 100 --eval-every 300 --eval-scenes 16 --ckpt-every 300 --minutes 8.5 --resume
#  recon: continue recon2, and, as a hedge on the camera head (mean pose after 1000 steps), a copy with a
#  5x camera weight; keep whichever has the lower rot_deg/trans_dir_deg at equal NVS
for W in 1 5; do
  python3 -m vist3a world train-mini --stage recon --init .carry/recon2 --out $R/recon_w$W --steps 8000 --batch 8 \
    --frames 8 --context 5 --size 224 --lr 2e-4 --warmup 100 --train-scenes 2000 --eval-scenes 16 --eval-every 500 \
    --ckpt-every 500 --minutes 8.5 --set cache=1 --set w_camera=$W --resume &
done; wait
# Scripts for this plan: scripts/device/mini_s4_piece1.sh (machine 1) and mini_s4_piece4.sh (machine 2, PART=a then b).
# Machine 2: (a) DiT cache + DiT from session 3's DiT on the final VAE (carry .whl_lite, .minilm_world and
# the DiT export: python scripts/device/make_minilm_world.py; --init runs/mini_s3/assets/wan-mini copied to
# .carry/dit), then (b) on the warm machine, DiT resumed || layer search + stitch train (LoRA r16) on the final
# VAE + recon (carry .whl_lite and the recon export): scripts/device/mini_s3_piece4.sh is (a)+(b) in one call.
# Then align (docs/alignment.md) and the claim table (benchmarks/mini_claim.py, GPU: < 1 min), and ship.
