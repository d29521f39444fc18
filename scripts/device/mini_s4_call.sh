#!/usr/bin/env bash
# Mini model, session 4 (2026-12-02, one H200): session 3's candidate weights did not survive (runs/ is not
# kept between sessions), so recon, DiT and stitched decoder start again; the VAE continues from the shipped one.
# One script, one call per PHASE, back to back on one warm machine (runs/ persists between the calls):
#   PHASE=1  VAE (--init shipped, session 3's recipe) || recon A (8 views, 5 context, camera weight 5)
#            || recon B (13 views, 7 context, camera weight 2: closer to the 13 views the stitched decoder sees)
#   The machine counted 100 % of its held time and went back 30 s after phase 1, so phases 2-3 run on a
#   fresh machine from the phase-1 VAE export, carried as .carry/vae (VAE_DIR):
#   PHASE=2  recon $RECONS (--resume: fresh when there is no checkpoint) || DiT latent cache on the VAE, then
#            the DiT
#   PHASE=3  recon $RECON resumed until STOP_RECON s, then layer search + stitch train (LoRA r16)
#            || DiT resumed
# Carry: .whl (gsplat, diffusers, plyfile, importlib_metadata, zipp), .minilm_world, .carry (phases 2-3).
set -uo pipefail
source scripts/device/mini_setup.sh
export VIST3A_MINILM=$PWD/.minilm_world
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-560}
left() { python3 -c "print(round(max(0.5, ($B - $1 - ($(date +%s) - $t0)) / 60), 2))"; }
VAE_RUN="python3 -m vist3a world train-mini --stage vae --object-weight 3 --out $R/vae --steps ${VAE_STEPS:-900} --batch 4 \
  --lr 1e-4 --warmup 50 --eval-every 300 --eval-scenes 16 --ckpt-every 300"
recon() {  # recon NAME FRAMES CONTEXT W_CAMERA [extra args]
  local name=$1 f=$2 c=$3 w=$4; shift 4
  python3 -m vist3a world train-mini --stage recon --out $R/recon_$name --steps ${RECON_STEPS:-2500} --batch 8 \
    --frames $f --context $c --size 224 --lr 2e-4 --warmup 100 --train-scenes 2000 --eval-scenes 16 --eval-every 250 \
    --ckpt-every 250 --set cache=1 --set w_camera=$w "$@"
}
declare -A SPEC=([A]="8 5 5" [B]="13 7 2")
VAE=${VAE_DIR:-$R/vae/wan_mini}
DIT="python3 -m vist3a world train-mini --stage dit --vae $VAE --out $R/dit --cache-scenes 3000 --steps ${DIT_STEPS:-10000} \
  --batch 32 --lr 2e-4 --warmup 200 --eval-every 1000 --eval-scenes 32"
last() { tail -c 600 $1 | tr '\r' '\n' | grep -v '^\s*$' | tail -2; }
case ${PHASE:-1} in
1)
  $VAE_RUN --init shipped --minutes $(left 40) > $R/vae.log 2>&1 &
  build_gsplat
  for n in A B; do recon $n ${SPEC[$n]} --minutes $(left 40) > $R/recon_$n.log 2>&1 & done
  wait
  for f in vae recon_A recon_B; do echo "== $f"; last $R/$f.log; done
  pack p1 $VAE $R/vae/metrics.json $R/recon_A/metrics.json $R/recon_B/metrics.json $R/*.log
  ;;
2)
  ( $DIT --cache-only > $R/dit_cache.log 2>&1; echo "cache exit $? at $(( $(date +%s) - t0 )) s"
    $DIT --minutes $(left 40) --resume > $R/dit.log 2>&1; echo "dit exit $?" ) &
  build_gsplat
  for n in ${RECONS:-A}; do recon $n ${SPEC[$n]} --minutes $(left 40) --resume > $R/recon_$n.2.log 2>&1 & done
  wait
  for f in $R/recon_*.2.log $R/dit.log; do echo "== $f"; last $f; done
  pack p2 $R/dit/wan_mini/transformer $R/recon_*/anysplat_mini $R/recon_*/metrics.json $R/dit/metrics.json $R/*.log
  ;;
3)
  N=${RECON:-A}
  $DIT --minutes $(left 60) --resume > $R/dit.3.log 2>&1 &
  dit=$!
  recon $N ${SPEC[$N]} --minutes $(python3 -c "print(max(0.5, (${STOP_RECON:-180} - ($(date +%s) - $t0)) / 60))") \
    --resume > $R/recon_$N.3.log 2>&1
  last $R/recon_$N.3.log
  python3 -m vist3a world make --layout dl3dv --scenes 200 --frames 13 --size 256 --seed 11 --out $R/world_dl3dv \
    --workers 12 > $R/world.log 2>&1
  V="--video wan-mini --video-weights $VAE --recon anysplat-mini --recon-weights $R/recon_$N/anysplat_mini"
  python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
    --out $R/search --clips 150 --val-clips 50 --frames 13 --batch-size 8 > $R/search.log 2>&1
  grep -A9 "layer " $R/search.log | head -9
  python3 -m vist3a stitch train $V --init $R/search --world 20000 --world-seed 3 --frames 13 --batch 4 \
    --steps ${STITCH_STEPS:-600} --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 50 --ckpt-every 200 --minutes $(left 75) \
    --out $R/stitch > $R/stitch.log 2>&1
  last $R/stitch.log
  wait $dit; last $R/dit.3.log
  mkdir -p $R/assets/wan-mini && cp -r $VAE/vae $VAE/video_model.json $R/assets/wan-mini/ \
    && cp -r $R/dit/wan_mini/transformer $R/assets/wan-mini/ 2>/dev/null
  cp -r $R/recon_$N/anysplat_mini $R/assets/anysplat-mini
  python3 benchmarks/mini_claim.py --help > /dev/null 2>&1 && echo "claim script ok"
  pack p3 $R/assets $R/stitch/stitched.safetensors $R/stitch/stitched.json $R/search/report.json \
    $R/search/report.csv $R/search/mse_vs_depth.png $R/recon_$N/metrics.json $R/dit/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
