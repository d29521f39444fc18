#!/usr/bin/env bash
# Mini model, device piece 5 (issues 9/10), on the warm machine of piece 4: layer search + stitched-decoder
# distillation of the mini pair, while the DiT run of piece 4 finishes. Carry: .whl, .carry (vae + recon exports).
set -uo pipefail
source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm16
R=runs/mini; t0=$(date +%s)
(build_gsplat > $R/gsplat.log 2>&1 &)
python3 -m vist3a world train-mini --stage dit --vae .carry/vae/wan_mini --out $R/dit --cache-scenes 3000 --steps 8000 \
  --batch 32 --lr 3e-4 --warmup 200 --eval-every 1000 --eval-scenes 32 --minutes 6 --resume > $R/dit2.log 2>&1 &
dit=$!
python3 -m vist3a world make --layout dl3dv --scenes 260 --frames 13 --size 256 --seed 11 --out $R/world_dl3dv --workers 12 > $R/world.log 2>&1
echo "world $(( $(date +%s) - t0 )) s"
V="--video wan-mini --video-weights .carry/vae/wan_mini --recon anysplat-mini --recon-weights .carry/recon/anysplat_mini"
python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
  --out $R/search --clips 200 --val-clips 60 --frames 13 --batch-size 8 > $R/search.log 2>&1
echo "search exit $? at $(( $(date +%s) - t0 )) s"; grep -A9 "layer " $R/search.log | head -12
left=$(python3 -c "print(round(max(1.0, (${BUDGET:-500} - ($(date +%s) - $t0)) / 60 - 0.5), 2))")
python3 -m vist3a stitch train $V --init $R/search --world 20000 --world-seed 3 --frames 13 --batch 4 --steps 3000 \
  --lr 2e-4 --warmup 100 --ckpt-every 500 --minutes $left --out $R/stitch > $R/stitch.log 2>&1
echo "stitch exit $? at $(( $(date +%s) - t0 )) s"; tail -c 400 $R/stitch.log
wait $dit; echo "dit exit $?"; tail -c 400 $R/dit2.log
pack piece5 $R/dit/wan_mini $R/dit/metrics.json $R/dit/tb $R/search $R/stitch/stitched.safetensors $R/stitch/stitched.json $R/stitch/tb $R/*.log
