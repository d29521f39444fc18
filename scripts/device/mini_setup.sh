# Sourced at the start of every mini-model device piece (issues 9/10): wheels, PYTHONPATH, gsplat build cache.
#   source scripts/device/mini_setup.sh
# a GPU run: on a machine without one these pieces would start hours of CPU training (ALLOW_CPU=1 to force)
if ! command -v nvidia-smi > /dev/null && [ "${ALLOW_CPU:-0}" != 1 ]; then
  echo "no NVIDIA GPU here: the scripts/device pieces are for the device machine (ALLOW_CPU=1 forces a CPU run)"
  exit 4
fi
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
mkdir -p "${OUT:=/tmp/out}"
# WHL: the carried wheel folder (.whl with gsplat; .whl_lite without it, when the carry limit is tight)
WHL=${WHL:-.whl}
if [ -d "$WHL" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHL"/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/.minilm
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
build_gsplat() {  # gsplat JIT-compiles its CUDA extension on first use (~100 s on a fresh machine)
  python3 -c 'import gsplat; from gsplat.cuda._backend import _C; assert _C is not None; print("gsplat", gsplat.__version__, "ready")'
}
# pack a list of run outputs (folders/files) into $OUT/NAME.tar.gz, split into parts of at most 15 MiB; a missing
# path is named and skipped (tar would otherwise fail and the parts that exist would not come back)
pack() {
  local name=$1 f; shift
  local have=()
  for f in "$@"; do if [ -e "$f" ]; then have+=("$f"); else echo "pack $name: $f missing, left out"; fi; done
  [ ${#have[@]} -gt 0 ] || { echo "pack $name: nothing to pack"; return 1; }
  tar czf "/tmp/$name.tar.gz" "${have[@]}" && split -b 15M -d "/tmp/$name.tar.gz" "$OUT/$name.tar.gz.part" && ls -la "$OUT"
}
