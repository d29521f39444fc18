#!/usr/bin/env bash
# Mini model, session 3 piece 4 (issues 9/10), one fresh H100, one call: the DiT latent cache + DiT on the
# shipped VAE, side by side with the layer search + stitched-decoder distillation (LoRA r16) of the shipped VAE
# and the recon2 export. Carry (64 MiB limit): .whl_lite, .minilm_world (scripts/device/make_minilm_world.py:
# MiniLM cut to the world's vocabulary, 22 MB), .carry/recon2 (anysplat-mini export, fp16).
set -uo pipefail
WHL=.whl_lite source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm_world
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-545}
VAE=src/vist3a/assets/mini/wan-mini
DIT="python3 -m vist3a world train-mini --stage dit --vae $VAE --out $R/dit --cache-scenes ${SCENES:-3000} --steps 8000 \
  --batch 32 --lr 3e-4 --warmup 200 --eval-every 1000 --eval-scenes 32"
( $DIT --cache-only > $R/dit_cache.log 2>&1; echo "cache exit $? at $(( $(date +%s) - t0 )) s"
  left=$(python3 -c "print(round(max(0.5, ($B - 25 - ($(date +%s) - $t0)) / 60), 2))")
  echo "dit: training for $left min"; $DIT --minutes $left --resume > $R/dit1.log 2>&1; echo "dit exit $?" ) &
dit=$!
python3 -m vist3a world make --layout dl3dv --scenes 200 --frames 13 --size 256 --seed 11 --out $R/world_dl3dv \
  --workers 10 > $R/world.log 2>&1
echo "world exit $? at $(( $(date +%s) - t0 )) s"
V="--video wan-mini --video-weights $VAE --recon anysplat-mini --recon-weights .carry/recon2"
python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
  --out $R/search --clips 150 --val-clips 50 --frames 13 --batch-size 8 > $R/search.log 2>&1
echo "search exit $? at $(( $(date +%s) - t0 )) s"; grep -A9 "layer " $R/search.log | head -12
left=$(python3 -c "print(round(max(0.5, ($B - 30 - ($(date +%s) - $t0)) / 60), 2))")
python3 -m vist3a stitch train $V --init $R/search --world 20000 --world-seed 3 --frames 13 --batch 4 --steps 3000 \
  --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 100 --ckpt-every 500 --minutes $left --out $R/stitch > $R/stitch.log 2>&1
echo "stitch exit $? at $(( $(date +%s) - t0 )) s"; tail -c 400 $R/stitch.log | tr '\r' '\n' | tail -3
wait $dit; tail -c 500 $R/dit1.log | tr '\r' '\n' | tail -3
pack s3p4 $R/dit/wan_mini/transformer $R/dit/metrics.json $R/search/report.json $R/search/report.csv \
  $R/search/mse_vs_depth.png $R/stitch/stitched.safetensors $R/stitch/stitched.json $R/stitch/tb $R/dit/tb $R/*.log
echo "total $(( $(date +%s) - t0 )) s"
