#!/usr/bin/env bash
# The wheels the device machine lacks, for `carry: [".whl"]` (run here, on the CPU machine, once per session):
# diffusers (+ importlib_metadata, zipp), gsplat, plyfile. Parts that vist3a never imports are dropped so that the
# wheels fit beside the tracked tree in the 64 MiB carry limit with room for a text cache: gsplat's 5.4 MB of GLM
# documentation and tests (its CUDA build never reads them), and diffusers' concrete pipelines (the subpackages of
# diffusers.pipelines and diffusers.modular_pipelines: vist3a builds its own pipelines from diffusers' models and
# schedulers; 6.4 -> 2.2 MB). All wheels: 7.1 -> 3.0 MB. WHL_LITE=1 also writes .whl_lite (no gsplat: PyTorch renderer).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
python3 -m pip download -q --no-deps -d .whl diffusers==0.42.1 gsplat==1.5.3 plyfile==1.1.5 \
  importlib_metadata==10.2.0 zipp==4.1.2
python3 - <<'PY'
import zipfile
from pathlib import Path

def skip_gsplat(name: str) -> bool:
    return "/third_party/glm/doc/" in name or "/third_party/glm/test/" in name or name.endswith("glm/manual.md")
def skip_diffusers(name: str) -> bool:
    parts = name.split("/")
    return len(parts) > 3 and parts[0] == "diffusers" and parts[1] in ("pipelines", "modular_pipelines")
for src, skip in ((Path(".whl/gsplat-1.5.3-py3-none-any.whl"), skip_gsplat),
                  (Path(".whl/diffusers-0.42.1-py3-none-any.whl"), skip_diffusers)):
    tmp = src.with_suffix(".tmp")
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zo:
        for info in zi.infolist():
            if skip(info.filename):
                continue
            data = zi.read(info.filename)
            if info.filename.endswith(".dist-info/RECORD"):  # keep RECORD consistent with what is left
                data = b"\n".join(l for l in data.split(b"\n") if not (l and skip(l.split(b",")[0].decode())))
            zo.writestr(info, data)
    tmp.replace(src)
PY
if [ "${WHL_LITE:-0}" = 1 ]; then mkdir -p .whl_lite && cp .whl/*.whl .whl_lite/ && rm .whl_lite/gsplat-*.whl; fi
du -sh .whl
