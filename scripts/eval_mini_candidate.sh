#!/usr/bin/env bash
# A packed mini candidate (scripts/pack_mini_candidate.py) measured on the CPU against the shipped set, the way
# docs/mini.md compares them since session 15: the true-latent ceiling on 24 held-out captions
# (benchmarks/t3d_ceiling.py, ~8 min on 2 cores), then `vist3a eval text-to-3d --world 24` at the default and the 777
# generation seeds (~10 min each, one after the other: two at once only share the 2 cores), each paired scene by scene
# with the shipped set's rows (benchmarks/t3d_paired.py): since 2026-12-08 the set is session 26's `gen4`, whose rows
# are in mini_s26_2026-12-07; the true-latent ceiling is paired with session 15's set, the last one it was run for.
#   bash scripts/eval_mini_candidate.sh CAND_DIR NAME OUT_DIR [STEPS]
#   STEPS: any of teacher,ceiling,gen_teacher,seed0,seed777,orbit0,orbit777 (default ceiling,seed0,seed777; teacher:
#   the candidate's anysplat-mini on the true frames, its teacher ceiling; gen_teacher: the same on the DiT's decoded
#   frames; orbitS: seed S's scenes scored on the paper's 8 random orbit views, `--views orbit` (session 26), reusing
#   the scenes when seedS ran in the same call, paired with the shipped set's orbit rows); a step whose JSON is
#   already in OUT_DIR is not redone, its pairings are
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 CAND_DIR NAME OUT_DIR [STEPS]" >&2; exit 2; }
cand=$(realpath -m "$1") name=$2 out=$(realpath -m "$3") steps=${4:-ceiling,seed0,seed777}
for st in ${steps//,/ }; do
  case $st in teacher|ceiling|gen_teacher|seed0|seed777|orbit0|orbit777) ;;
    *) echo "unknown step $st (teacher,ceiling,gen_teacher,seed0,seed777,orbit0,orbit777)" >&2; exit 2;; esac
done
[ -f "$cand/stitched-mini/stitched.json" ] || { echo "$cand: not a packed candidate (no stitched-mini/stitched.json)" >&2; exit 2; }
cd "$(dirname "$0")/.."
# each evaluation in a fresh folder: eval text-to-3d reuses the scenes and renders it finds in its --out
work=$(mktemp -d /tmp/eval_mini_candidate.XXXXXX)
trap 'echo "renders and contact sheets: $work"' EXIT
mkdir -p "$out"
s15=benchmarks/results/mini_s15_2026-12-06
s17=benchmarks/results/mini_s17_2026-12-06
s26=benchmarks/results/mini_s26_2026-12-07
shipped_rows() {  # shipped_rows VIEWS SEED: the shipped set's per-scene rows (trajectory|orbit) at generation seed 0|777
  if [ "$1" = orbit ]; then echo "$s26/orbit/t3d_world24_orbit_g4_$2_per_scene.csv"
  else echo "$s26/t3d_world24_gen26_4$([ "$2" = 0 ] || echo "_$2")_per_scene.csv"; fi
}
export VIST3A_MINI_ASSETS=$cand
has() { [[ ",$steps," == *",$1,"* ]]; }  # has STEP: STEP is one of the comma-separated steps asked for
pair() { python3 benchmarks/t3d_paired.py --pair "$1" "$2" --json "$out/$3"; }  # pair BASE_CSV CAND_CSV JSON_NAME
ceiling() {  # ceiling ROW JSON_STEM [t3d_ceiling.py flags]: one t3d_ceiling row, unless its JSON is already in $out
  local row=$1 stem=$2; shift 2
  [ -f "$out/${stem}_cpu.json" ] && return
  python3 benchmarks/t3d_ceiling.py --world 24 --out "$work/$row" --json "$out/${stem}_cpu.json" --device cpu "$@"
  cp "$work/$row/per_scene.csv" "$out/${stem}_per_scene.csv"
}
# each step's pairings are redone whenever its rows are there (cheap): a rerun mends a pairing that failed
if has teacher; then
  ceiling teacher "t3d_ceiling_world24_teacher_${name}" --teacher --teacher-weights "$cand/anysplat-mini"
  pair "$s17/t3d_ceiling_world24_teacher_obj_s17_per_scene.csv" "$out/t3d_ceiling_world24_teacher_${name}_per_scene.csv" \
    "paired_teacher_${name}_vs_teacher_obj_s17.json"
fi
if has ceiling; then
  ceiling ceiling "t3d_ceiling_world24_true_latent_${name}"
  csv=$out/t3d_ceiling_world24_true_latent_${name}_per_scene.csv
  pair "$s17/t3d_ceiling_world24_teacher_obj_s17_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_teacher_obj_s17.json"
  pair "$s17/t3d_ceiling_world24_true_latent_scratch_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_scratch.json"
  pair "$s15/t3d_ceiling_world24_true_latent_per_scene.csv" "$csv" "paired_true_latent_${name}_vs_s15_set.json"
fi
# gen_teacher (session 20): the DiT's decoded frames of the seed0 generation through the candidate's anysplat-mini
# (the two-stage path); seed0's scenes are paired with it when both are there: what the stitch loses on DiT latents
if has gen_teacher; then
  ceiling gen_teacher "t3d_ceiling_world24_generated_teacher_${name}" --teacher --generated --teacher-weights "$cand/anysplat-mini"
fi
t3d_row() {  # t3d_row STEM SEED [eval flags]: one `eval text-to-3d --world 24` row of $out, unless its JSON is there
  local stem=$1 seed=$2 sfx gs; shift 2
  sfx=$([ "$seed" = 0 ] && echo "" || echo "_$seed") gs=$([ "$seed" = 0 ] && echo "" || echo "--gen-seed $seed")
  [ -f "$out/${stem}${sfx}.json" ] && return
  vist3a eval text-to-3d --model mini --world 24 $gs --device cpu --no-progress --out "$work/t3d${sfx}" "$@"
  cp "$work/t3d${sfx}/per_scene.csv" "$out/${stem}${sfx}_per_scene.csv"
  cp "$work/t3d${sfx}/overall.json" "$out/${stem}${sfx}.json"
}
for seed in 0 777; do
  has seed$seed || continue
  sfx=$([ $seed = 0 ] && echo "" || echo "_777")
  t3d_row "t3d_world24_${name}" $seed
  pair "$(shipped_rows trajectory $seed)" "$out/t3d_world24_${name}${sfx}_per_scene.csv" \
    "paired_${name}${sfx}_vs_shipped.json"
done
for seed in 0 777; do  # after seedS, so that its scenes are reused (its trajectory rows are copied out by then)
  has orbit$seed || continue
  sfx=$([ $seed = 0 ] && echo "" || echo "_777")
  t3d_row "t3d_world24_orbit_${name}" $seed --views orbit --reuse
  pair "$(shipped_rows orbit $seed)" "$out/t3d_world24_orbit_${name}${sfx}_per_scene.csv" \
    "paired_orbit_${name}${sfx}_vs_shipped.json"
done
gt=$out/t3d_ceiling_world24_generated_teacher_${name}_per_scene.csv
if [ -f "$gt" ] && [ -f "$out/t3d_world24_${name}_per_scene.csv" ]; then
  pair "$gt" "$out/t3d_world24_${name}_per_scene.csv" "paired_${name}_vs_its_generated_teacher.json"
fi
