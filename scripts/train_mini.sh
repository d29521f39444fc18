#!/usr/bin/env bash
# Device runs of the mini model (issues 9-10). Each block is one device call of at most 10 minutes on the
# H100 (`--minutes` stops a stage with a checkpoint and an export; repeat with `--resume`). Calls run back to
# back on one warm machine so that runs/ (checkpoints, latent and clip caches) persists between them.
# What ran on 2026-11-25 and what it measured: docs/mini.md ("Device runs of 2026-11-25").
#   session 2 (2026-11-25): scripts/device/mini_piece1.sh (VAE || recon), resumes, mini_piece4.sh (DiT cache +
#   DiT), mini_piece5.sh (layer search + stitch train || DiT), stitch resume + benchmarks/mini_claim.py.
# Next session, in this order (every later stage depends on the VAE's latent space):
set -euo pipefail
source scripts/device/mini_setup.sh
R=${RUNS:-runs/mini}
# 1. VAE: continue from the shipped weights until colour is learned (it was grey at 2.3k steps, 22.5 dB):
#    a fresh optimizer and schedule from the shipped weights (--init shipped), more steps
python3 -m vist3a world train-mini --stage vae --init shipped --object-weight 5 --out $R/vae --steps 10000 --batch 4 \
  --lr 3e-4 --warmup 100 \
  --eval-every 500 --eval-scenes 16 --minutes 8 --resume
# 2. recon (the diagnosed recipe, docs/mini.md "Recon stage: diagnosis"), in parallel with 1:
python3 -m vist3a world train-mini --stage recon --out $R/recon2 --steps 8000 --batch 8 --frames 8 --context 5 \
  --size 224 --lr 2e-4 --warmup 300 --train-scenes 2000 --eval-scenes 16 --eval-every 500 --ckpt-every 500 \
  --minutes 8 --set cache=1 --resume
# 3. DiT on the final VAE (needs VIST3A_MINILM=.minilm16 for the cache build), 4. layer search + stitch train,
# 5. align, 6. claim table + bench_align_mini: see scripts/device/mini_piece4.sh, mini_piece5.sh and docs/alignment.md.
