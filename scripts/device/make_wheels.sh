#!/usr/bin/env bash
# The wheels the device machine lacks, for `carry: [".whl"]` (run here, on the CPU machine, once per session):
# diffusers (+ importlib_metadata, zipp), gsplat, plyfile. gsplat's wheel carries 5.4 MB of GLM documentation
# and tests that its CUDA build never reads; they are dropped so that the wheels (7.1 MB) fit beside the
# tracked tree in the 64 MiB carry limit. WHL_LITE=1 also writes .whl_lite (no gsplat: PyTorch renderer).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
python3 -m pip download -q --no-deps -d .whl diffusers==0.42.1 gsplat==1.5.3 plyfile==1.1.5 \
  importlib_metadata==10.2.0 zipp==4.1.2
python3 - <<'PY'
import zipfile
from pathlib import Path

src = Path(".whl/gsplat-1.5.3-py3-none-any.whl")
tmp = src.with_suffix(".tmp")
def skip(name: str) -> bool:
    return "/third_party/glm/doc/" in name or "/third_party/glm/test/" in name or name.endswith("glm/manual.md")
with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zo:
    for info in zi.infolist():
        if skip(info.filename):
            continue
        data = zi.read(info.filename)
        if info.filename.endswith(".dist-info/RECORD"):  # keep RECORD consistent with what is left
            data = b"\n".join(l for l in data.split(b"\n") if not skip(l.split(b",")[0].decode()))
        zo.writestr(info, data)
tmp.replace(src)
PY
if [ "${WHL_LITE:-0}" = 1 ]; then mkdir -p .whl_lite && cp .whl/*.whl .whl_lite/ && rm .whl_lite/gsplat-*.whl; fi
du -sh .whl
