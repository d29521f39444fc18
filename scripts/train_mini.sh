#!/usr/bin/env bash
# Planned device runs of issue 9 (mini model, stages 1-2). Commands only: nothing here has been run yet.
# Each command is one device piece of at most 10 minutes: `--minutes 8` stops the loop with a
# checkpoint after 8 minutes of training (the rest is start-up, held-out evaluation and export);
# repeat the same command with `--resume` until it prints "finished". Step counts are placeholders
# to be set from benchmarks/results/train_mini_gpu.json (steps_per_8_min).
set -euo pipefail
RUNS=${RUNS:-runs/mini}

# 0. speed/memory of both stages at their real sizes (< 3 min)
python benchmarks/bench_train_mini.py --out benchmarks/results/train_mini_gpu.json

# 1. video VAE (wan-mini classes): 13 frames at 256², L1 + 1e-6 KL, held-out reconstruction PSNR
python -m vist3a world train-mini --stage vae --out "$RUNS/vae" --steps 20000 --batch 4 --lr 2e-4 \
    --warmup 500 --eval-every 1000 --eval-scenes 16 --minutes 8
python -m vist3a world train-mini --stage vae --out "$RUNS/vae" --steps 20000 --batch 4 --lr 2e-4 \
    --warmup 500 --eval-every 1000 --eval-scenes 16 --minutes 8 --resume          # repeat until finished
#   -> $RUNS/vae/wan_mini (fp16 VAE + fitted latent mean/std), $RUNS/vae/metrics.json (eval.psnr)

# 2. anysplat-mini: 8 views at 224² (5 context, 3 held-out targets), render + depth + camera losses,
#    held-out NVS PSNR/SSIM
python -m vist3a world train-mini --stage recon --out "$RUNS/recon" --steps 20000 --batch 4 --lr 2e-4 \
    --warmup 500 --frames 8 --context 5 --eval-every 1000 --eval-scenes 16 --minutes 8
python -m vist3a world train-mini --stage recon --out "$RUNS/recon" --steps 20000 --batch 4 --lr 2e-4 \
    --warmup 500 --frames 8 --context 5 --eval-every 1000 --eval-scenes 16 --minutes 8 --resume   # repeat
#   -> $RUNS/recon/anysplat_mini (model.safetensors + vist3a_model.json), $RUNS/recon/metrics.json

# results: tensorboard --logdir $RUNS
