#!/usr/bin/env bash
# Mini model, next device session (written 2026-12-03 at the end of session 8; plan: docs/mini.md, "Next device
# session"). Session 8 found (benchmarks/camera_overfit.py, geometry-only steps) that anysplat-mini's camera head
# leaves the static camera on pans — pairs or 8-frame clips, from scratch, at 56² and 224² — but not on the world's
# mix, not even without the orbits, and that pan-pretraining is lost again on the mix. At 56² (4x4 tokens) a pan
# and a truck both shift the image and only parallax tells them apart; this session asks at 224² which motion
# sets the head can learn, then trains the recon stage on the broadest one that works.
#
# One call per PHASE, back to back on one warm machine (runs/ and the installed wheels persist between calls;
# carried paths do not). The machine goes back 30 s after a call ends: issue the next call at once.
# Carry `.whl` (scripts/device/make_wheels.sh) in PHASE=1. No alignment this session (docs/mini.md, session 8:
# with a static-camera reconstructor its consistency reward cannot reward an orbit).
#
#   PHASE=1  four camera proxies at 224² from the shipped weights, 8 frames / 5 context: the world's mix, the mix
#            without orbits, pan+truck, pan (gsplat builds beside them at low priority)
#   PHASE=2  C1: recon --init shipped, geometry only, on the broadest motion set whose proxy ended 15 % below the
#            static camera (scripts/device/camfit_pick.py --broadest; MOTIONS=... overrides; pan if none did)
#   PHASE=3  if C1's held-out rotation error (on the world's mix) is below the static camera's: recipe A with
#            rendering from C1 on the same motions, beside a re-stitch + claim table on C1; otherwise the
#            re-stitch + claim table alone (what the geometry-only steps did to depth and appearance)
# Each phase ends within BUDGET seconds (default 540).
set -uo pipefail
source scripts/device/mini_setup.sh
R=runs/mini; mkdir -p $R; t0=$(date +%s); B=${BUDGET:-540}; CAM=${CAM:-5}
A=src/vist3a/assets/mini
source scripts/device/mini_recipes.sh
STITCH_EXTRA="--loss-weight depth_grad=0.05"
GEO="--set w_render=0 --set w_mse=0 --set w_camera=$CAM --set cache=1"
stage() {  # stage OUT INIT FRAMES CONTEXT [--set ...]: a geometry-only recon run of at most the time left
  local out=$1 init=$2 f=$3 c=$4; shift 4
  python3 -m vist3a world train-mini --stage recon --init $init --out $out --steps 40000 --batch 8 --frames $f \
    --context $c --size 224 --lr 2e-4 --warmup 50 --train-scenes 2000 --eval-scenes 16 --eval-every 500 \
    --ckpt-every 500 --minutes $(left 30) $GEO "$@"
}
moved() {  # did run $1's last evaluation put the camera below the static one by 15 %?
  python3 -c "
import json, sys
e = json.load(open('$1/metrics.json'))['evals'][-1]
print(f\"rot {e['rot_deg']:.1f} vs static {e['rot_deg_static']:.1f}\", file=sys.stderr)
sys.exit(0 if e['rot_deg'] < 0.85 * e['rot_deg_static'] else 1)"
}
if [ "${PHASE:-1}" != 1 ] && ! python3 -c "import diffusers, gsplat" 2>/dev/null; then
  echo "a fresh machine: phase 1's wheels (and runs/) are gone; carry .whl and rerun phase 1 first"; exit 3
fi
case ${PHASE:-1} in
1)
  (nice -n 19 bash -c "$(declare -f build_gsplat); build_gsplat" > $R/gsplat.log 2>&1 &)  # for PHASE=2's evals
  CF="python3 benchmarks/camera_overfit.py --scenes 512 --eval-scenes 16 --measure 8 --size 224 --frames 8
      --context 5 --batch 8 --every 250 --steps 20000 --init shipped --device cuda"
  for v in "mix" "noorbit --motion arc,dolly,pan,truck,rise" "pantruck --motion pan,truck" "pan --motion pan"; do
    set -- $v; n=$1; shift
    timeout $(python3 -c "print(int($B - 30 - ($(date +%s) - $t0)))") $CF "$@" \
      --out $R/camfit_$n.json > $R/camfit_$n.log 2>&1 &
  done
  wait
  for f in camfit_mix camfit_noorbit camfit_pantruck camfit_pan gsplat; do echo "== $f"; last $R/$f.log; done
  python3 scripts/device/camfit_pick.py $R --broadest mix noorbit pantruck pan
  pack p1 $R/camfit_*.json $R/*.log
  ;;
2)
  M=${MOTIONS:-$(python3 scripts/device/camfit_pick.py $R --broadest mix noorbit pantruck pan)}
  [ "$M" = none ] && M=pan
  echo "C1 motions: $M"; echo "$M" > $R/c1_motions.txt
  MS=(); [ "$M" != mix ] && MS=(--set motions=$M)
  stage $R/c1 shipped 8 5 "${MS[@]}" > $R/c1.log 2>&1
  echo "== c1"; last $R/c1.log; moved $R/c1
  pack p2 $R/c1/metrics.json $R/c1_motions.txt $R/*.log
  ;;
3)
  M=$(cat $R/c1_motions.txt); MS=(); [ "$M" != mix ] && MS=(--set motions=$M)
  if moved $R/c1; then
    python3 -m vist3a world train-mini --stage recon --init $R/c1/anysplat_mini --out $R/c3 --steps 20000 \
      --batch 8 --frames 8 --context 5 --size 224 --lr 2e-4 --warmup 50 --train-scenes 2000 --eval-scenes 16 \
      --eval-every 250 --ckpt-every 250 --set cache=1 --set cache_dir=$R/c1/cache --set w_camera=$CAM "${MS[@]}" --minutes $(left 200) \
      > $R/c3.log 2>&1 &
  fi
  stitch c1 $R/c1/anysplat_mini $(left 190)
  claim c1 $R/c1/anysplat_mini $R/stitch_c1
  wait
  for f in c3 stitch_c1 claim16_c1; do [ -f $R/$f.log ] && { echo "== $f"; last $R/$f.log; }; done
  sed -n 3,8p $R/claim16_c1.md
  C=$R/cand; mkdir -p $C/c1/stitched-mini
  cp -r $R/c1/anysplat_mini $C/c1/anysplat-mini && cp $R/stitch_c1/stitched.* $C/c1/stitched-mini/
  [ -d $R/c3/anysplat_mini ] && cp -r $R/c3/anysplat_mini $C/c3-anysplat-mini
  pack p3 $C $R/claim16_* $R/c*/metrics.json $R/*.log
  ;;
esac
echo "total $(( $(date +%s) - t0 )) s"
