#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-03 at the end of session 6; plan: docs/mini.md, "Next device
# session"). One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between
# calls; the machine goes back 30 s after a call ends, so issue the next call at once). A one-GPU machine counts
# its whole held time (session 6), so 30 device-minutes are ~3 calls of 9 minutes after a ~1.5-minute start.
#
#   PHASE=1  carry .whl (13 MB; with the 54 MB of tracked files that is the whole 64 MiB):
#            recon continued from the shipped anysplat-mini (session 6's 530-step run died with its machine)
#            || world set -> layer search -> stitch train on the *shipped* recon with the depth-gradient weight
#            raised (DG, default 0.05; the paper's 0.005 left the stitched depth smoothed) — the same recipe as
#            session 6's 415-step run otherwise, so the two compare directly
#   PHASE=2  carry .carry/text_cache.safetensors (12.5 MB; made on the CPU by `vist3a align --model mini --world
#            256 --write-text-cache .carry/text_cache.safetensors --out runs/align`):
#            align the shipped DiT || recon resumed
#   PHASE=3  nothing to carry: align resumed || stitch train on the phase-1/2 recon (DG weight); claim table on
#            16 scenes for both stitched decoders; pack the candidates — the aligned DiT's transformer/ and
#            lora_ema/ (session 6 forgot lora_ema), the new recon, both stitched folders — for the CPU
#            evaluations here (bench_align_mini.py before/after, eval text-to-3d, mini_claim_depth.py)
# Each phase ends within BUDGET seconds (default 540; give PHASE=3 BUDGET=480 if the start was slow).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}; DG=${DG:-0.05}
A=src/vist3a/assets/mini
left() { python3 -c "print(round(max(0.5, ($B - $1 - ($(date +%s) - $t0)) / 60), 2))"; }
last() { tail -c 600 $1 | tr '\r' '\n' | grep -v '^\s*$' | tail -2; }
recon() {  # session 4's recipe A (8 views, 5 context, camera weight 5), continued from the shipped weights
  python3 -m vist3a world train-mini --stage recon --init shipped --out $R/recon --steps ${RECON_STEPS:-3000} \
    --batch 8 --frames 8 --context 5 --size 224 --lr 2e-4 --warmup 50 --train-scenes 2000 --eval-scenes 16 \
    --eval-every 250 --ckpt-every 250 --set cache=1 --set w_camera=5 "$@"
}
stitch() {  # stitch NAME RECON_DIR MINUTES: world set + layer search (~60 s) + LoRA r16 self-distillation
  local name=$1 rw=$2 mins=$3
  [ -d $R/world_dl3dv ] || python3 -m vist3a world make --layout dl3dv --scenes 200 --frames 13 --size 256 \
    --seed 11 --out $R/world_dl3dv --workers 12 > $R/world.log 2>&1
  local V="--video wan-mini --video-weights $A/wan-mini --recon anysplat-mini --recon-weights $rw"
  python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
    --out $R/search_$name --clips 150 --val-clips 50 --frames 13 --batch-size 8 > $R/search_$name.log 2>&1
  python3 -m vist3a stitch train $V --init $R/search_$name --world 20000 --world-seed 3 --frames 13 --batch 4 \
    --steps ${STITCH_STEPS:-600} --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 50 --ckpt-every 100 --minutes $mins \
    --loss-weight depth_grad=$DG --out $R/stitch_$name > $R/stitch_$name.log 2>&1
}
claim() {  # claim NAME RECON_DIR STITCHED_DIR
  python3 benchmarks/mini_claim.py --video-weights $A/wan-mini --recon-weights $2 --stitched-weights $3 \
    --scenes 16 --alphas 0,0.1,0.3 --no-lpips --device cuda --out $R/claim16_$1.json --md $R/claim16_$1.md \
    > $R/claim16_$1.log 2>&1
}
ALIGN="python3 -m vist3a align --model mini --world 256 --out $R/align --steps 5000 --min-steps 8 --max-steps 16
  --drtune-k 2 --cfg 2.5 4 --reward-views 2 --lr 1e-4 --ckpt-every 50 --device cuda
  --text-cache .carry/text_cache.safetensors --resume"
if [ "${PHASE:-1}" != 1 ] && ! python3 -c "import diffusers, gsplat" 2>/dev/null; then
  echo "a fresh machine: phase 1's wheels (and runs/) are gone; carry .whl with this call, and rerun phase 1 first"
  exit 3
fi
case ${PHASE:-1} in
1)
  build_gsplat
  recon --minutes $(left 45) > $R/recon.1.log 2>&1 &
  stitch dg_shipped $A/anysplat-mini $(left 60)
  wait
  for f in recon.1 stitch_dg_shipped; do echo "== $f"; last $R/$f.log; done
  pack p1 $R/recon/metrics.json $R/stitch_dg_shipped/stitched.safetensors $R/stitch_dg_shipped/stitched.json \
    $R/search_dg_shipped/report.csv $R/*.log
  ;;
2)
  [ -f .carry/text_cache.safetensors ] || { echo "carry .carry/text_cache.safetensors"; exit 2; }
  $ALIGN --minutes $(left 40) > $R/align.2.log 2>&1 &
  recon --resume --minutes $(left 40) > $R/recon.2.log 2>&1
  wait
  for f in recon.2 align.2; do echo "== $f"; last $R/$f.log; done
  pack p2 $R/recon/metrics.json $R/align/summary.json $R/*.log
  ;;
3)
  $ALIGN --minutes $(left 150) > $R/align.3.log 2>&1 &
  al=$!
  stitch dg_recon $R/recon/anysplat_mini $(left 190)
  claim dg_shipped $A/anysplat-mini $R/stitch_dg_shipped &
  claim dg_recon $R/recon/anysplat_mini $R/stitch_dg_recon
  wait
  for f in align.3 stitch_dg_recon claim16_dg_shipped claim16_dg_recon; do echo "== $f"; last $R/$f.log; done
  sed -n 3,8p $R/claim16_dg_shipped.md $R/claim16_dg_recon.md
  # candidates, each a drop-in folder for VIST3A_MINI_ASSETS (the VAE is the shipped one throughout)
  C=$R/cand; mkdir -p $C/dg_shipped $C/dg_recon/stitched-mini $C/aligned
  cp -r $R/stitch_dg_shipped $C/dg_shipped/stitched-mini
  cp -r $R/recon/anysplat_mini $C/dg_recon/anysplat-mini && cp $R/stitch_dg_recon/stitched.* $C/dg_recon/stitched-mini/
  cp -r $R/align/wan_mini/transformer $R/align/lora_ema $C/aligned/
  rm -rf $C/*/stitched-mini/checkpoints $C/*/stitched-mini/tb
  pack p3 $C $R/claim16_* $R/align/summary.json $R/recon/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
