# The mini-model device recipes shared by the session scripts (mini_s6_call.sh, mini_s7_call.sh): sourced after
# mini_setup.sh with R (run folder), A (shipped assets), B (seconds budget), t0 (start time) and PHASE set.
# STITCH_EXTRA: extra `vist3a stitch train` flags (e.g. --loss-weight depth_grad=0.05); VW: the video weights the
# stitcher encodes (and decodes) with (default: the shipped wan-mini).
left() { python3 -c "print(round(max(0.5, ($B - $1 - ($(date +%s) - $t0)) / 60), 2))"; }
last() { tail -c 600 $1 | tr '\r' '\n' | grep -v '^\s*$' | tail -2; }
recon() {  # session 4's recipe A (8 views, 5 context, camera weight 5), continued from the shipped weights
  python3 -m vist3a world train-mini --stage recon --init shipped --out $R/recon --steps ${RECON_STEPS:-3000} \
    --batch 8 --frames 8 --context 5 --size 224 --lr 2e-4 --warmup 50 --train-scenes 2000 --eval-scenes 16 \
    --eval-every 250 --ckpt-every 250 --set cache=1 --set w_camera=5 "$@"
}
stitch() {  # stitch NAME RECON_DIR MINUTES: world set + layer search (~60 s) + LoRA r16 self-distillation
  stitch_search $1 $2
  stitch_train $1 $2 $3
}
stitch_search() {  # stitch_search NAME RECON_DIR: the world set (once) and the layer search of `stitch`
  local name=$1 rw=$2
  [ -d $R/world_dl3dv ] || python3 -m vist3a world make --layout dl3dv --scenes 200 --frames 13 --size 256 \
    --seed 11 --out $R/world_dl3dv --workers 12 > $R/world.log 2>&1
  local V="--video wan-mini --video-weights ${VW:-$A/wan-mini} --recon anysplat-mini --recon-weights $rw"
  python3 -m vist3a stitch search $V --dataset dl3dv:$R/world_dl3dv --spec conv3d_k5x3x3_o192_s1x2x2_p2x1x1 \
    --out $R/search_$name --clips 150 --val-clips 50 --frames 13 --batch-size 8 > $R/search_$name.log 2>&1
}
stitch_train() {  # stitch_train NAME RECON_DIR MINUTES: the distillation of `stitch` alone, resumed where a call left it
  local name=$1 rw=$2 mins=$3
  local V="--video wan-mini --video-weights ${VW:-$A/wan-mini} --recon anysplat-mini --recon-weights $rw"
  python3 -m vist3a stitch train $V --init $R/search_$name --world 20000 --world-seed 3 --frames 13 --batch 4 \
    --steps ${STITCH_STEPS:-600} --lora r16,a16,d0.0,f0 --lr 3e-4 --warmup 50 --ckpt-every 100 --minutes $mins \
    ${STITCH_EXTRA:-} --out $R/stitch_$name --resume >> $R/stitch_$name.log 2>&1
}
claim() {  # claim NAME RECON_DIR STITCHED_DIR
  python3 benchmarks/mini_claim.py --video-weights $A/wan-mini --recon-weights $2 --stitched-weights $3 \
    --scenes 16 --alphas 0,0.1,0.3 --no-lpips --device cuda --out $R/claim16_$1.json --md $R/claim16_$1.md \
    > $R/claim16_$1.log 2>&1
}
# ALIGN_RUN (run folder under R, default align), ALIGN_WORLD (rollout captions, default 256; the text cache must
# hold them) and ALIGN_SEED (their world seed, default 0) are read when this file is sourced
ALIGN="python3 -m vist3a align --model mini --world ${ALIGN_WORLD:-256} --world-seed ${ALIGN_SEED:-0} --out $R/${ALIGN_RUN:-align} --steps 5000 --min-steps 8 --max-steps 16
  --drtune-k 2 --cfg 2.5 4 --reward-views 2 --lr 1e-4 --ckpt-every 50 --device cuda
  --text-cache .carry/text_cache.safetensors --resume"
warm_or_phase1() {  # phases after 1 need the machine phase 1 set up (wheels installed, runs/ present)
  if [ "${PHASE:-1}" != 1 ] && ! python3 -c "import diffusers, gsplat" 2>/dev/null; then
    echo "a fresh machine: phase 1's wheels (and runs/) are gone; carry .whl with this call, and rerun phase 1 first"
    exit 3
  fi
}
g1() {  # g1 MARGIN_S [--set ...]: session 10's recon run (c1a's recipe), stopped MARGIN_S before the budget, hard-stopped 60 s later
  # GNAME (run name, default g1) and GINIT (--init: shipped or an anysplat-mini folder) let a later session continue it
  local margin=$1 n=${GNAME:-g1}; shift
  local secs=$(python3 -c "print(int($B - $margin - ($(date +%s) - $t0)))")
  OMP_NUM_THREADS=8 timeout $((secs + 60)) python3 -m vist3a world train-mini --stage recon --init ${GINIT:-shipped} \
    --out $R/$n --steps 40000 --batch 8 --frames 8 --context 5 --size 224 --lr 2e-4 --warmup 50 \
    --train-scenes 2000 --eval-scenes 16 --eval-every 100000 --ckpt-every 1000 --minutes $(python3 -c "print($secs / 60)") \
    --set w_camera=5 --set cache=1 "$@" > $R/$n.$PHASE.log 2>&1
  echo "== $n (rc $?)"; last $R/$n.$PHASE.log
  python3 scripts/device/ckpt_weights.py $R/$n $R/$n/weights
  python3 benchmarks/recon_camera_eval.py shipped $R/$n/weights --frames 8 --context 5 --scenes 32 --device cuda \
    --out $R/cam_${n}_p$PHASE.json 2>&1 | grep -v INFO
}
