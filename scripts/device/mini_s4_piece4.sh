#!/usr/bin/env bash
# Mini model, next session's machine 2 (issues 9/10), after the machine-1 VAE is committed as the shipped one.
# PART=a (carry .whl_lite, .minilm_world, .carry/dit = runs/mini_s3/assets/wan-mini/transformer's parent):
#   the DiT latent cache on the shipped VAE, then the DiT from session 3's DiT (--init) for the rest of the call.
# PART=b, on the same warm machine (carry .whl_lite, .carry/recon = the chosen machine-1 recon export):
#   DiT resumed || world set → layer search → stitch train (LoRA r16). Then the claim table and align.
set -uo pipefail
WHL=.whl_lite source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm_world
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-545}
VAE=src/vist3a/assets/mini/wan-mini
DIT="python3 -m vist3a world train-mini --stage dit --vae $VAE --out $R/dit --cache-scenes 3000 --steps 12000 \
  --batch 32 --lr 2e-4 --warmup 200 --eval-every 1000 --eval-scenes 32"
left() { python3 -c "print(round(max(0.5, ($B - $1 - ($(date +%s) - $t0)) / 60), 2))"; }
if [ "${PART:-a}" = a ]; then
  $DIT --cache-only > $R/dit_cache.log 2>&1; echo "cache exit $? at $(( $(date +%s) - t0 )) s"
  $DIT --init .carry/dit --minutes $(left 25) --resume > $R/dit1.log 2>&1; echo "dit exit $?"
  tail -c 400 $R/dit1.log | tr '\r' '\n' | tail -1
  pack s4p4a $R/dit/wan_mini/transformer $R/dit/metrics.json $R/*.log
  exit 0
fi
$DIT --minutes $(left 25) --resume > $R/dit2.log 2>&1 &
dit=$!
python3 -m vist3a world make --layout dl3dv --scenes 200 --frames 13 --size 256 --seed 11 --out $R/world_dl3dv \
  --workers 10 > $R/world.log 2>&1
V="--video wan-mini --video-weights $VAE --recon anysplat-mini --recon-weights .carry/recon"
python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
  --out $R/search --clips 150 --val-clips 50 --frames 13 --batch-size 8 > $R/search.log 2>&1
grep -A9 "layer " $R/search.log | head -9
python3 -m vist3a stitch train $V --init $R/search --world 20000 --world-seed 3 --frames 13 --batch 4 --steps 3000 \
  --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 100 --ckpt-every 500 --minutes $(left 30) --out $R/stitch > $R/stitch.log 2>&1
tail -c 300 $R/stitch.log | tr '\r' '\n' | tail -1
wait $dit; tail -c 400 $R/dit2.log | tr '\r' '\n' | tail -1
pack s4p4b $R/dit/wan_mini/transformer $R/dit/metrics.json $R/search/report.json $R/search/report.csv \
  $R/search/mse_vs_depth.png $R/stitch/stitched.safetensors $R/stitch/stitched.json $R/*.log
echo "total $(( $(date +%s) - t0 )) s"
