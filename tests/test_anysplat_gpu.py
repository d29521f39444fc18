"""CUDA checks of AnySplat: fp32 parity on the GPU and the bf16-autocast path (skipped without CUDA)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vist3a import registry

pytestmark = pytest.mark.gpu


@pytest.fixture
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double().cpu(), ref.double().cpu()
    return float((x - ref).abs().max() / ref.abs().max())


def test_mini_cuda_fp32_matches_cpu_and_autocast_is_close(no_tf32) -> None:
    torch.manual_seed(0)
    cpu = registry.build("anysplat-mini", device="cpu", autocast=False)
    gpu = registry.build("anysplat-mini", device="cuda", autocast=False)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(1, 3, 3, 112, 112)
    with torch.no_grad():
        a = cpu(x, voxelize=False)
        b = gpu(x.cuda(), voxelize=False)
        gpu.config = replace(gpu.config, autocast=True)
        c = gpu(x.cuda(), voxelize=False)
    for name in ("depth", "gs_raw", "c2w"):
        assert _rel(getattr(b, name), getattr(a, name)) < 1e-4, name
    assert _rel(b.aggregator.layers[-1], a.aggregator.layers[-1]) < 1e-4
    # bf16 autocast in the aggregator: close, not equal.
    assert _rel(c.aggregator.layers[-1], a.aggregator.layers[-1]) < 0.1  # a wrong path is off by O(1)
    assert c.depth.dtype == torch.float32 and c.gs_raw.dtype == torch.float32


def test_full_model_cuda_fp32_parity(shared_dir: Path, no_tf32) -> None:
    """The released architecture on the GPU (fp32, TF32 off) against the official CPU fixture."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from anysplat_parity import LazyStateDict, fixture_tensors, load_make_weights, rel_err
    from vist3a.models.anysplat import anysplat

    mw = load_make_weights(shared_dir)
    assert mw.self_check(verbose=False)
    model = anysplat(
        device="cuda",
        weights=LazyStateDict(mw, shared_dir / "reference/anysplat_state_dict_manifest.tsv"),
        autocast=False,
    )
    ref = fixture_tensors(shared_dir)
    with torch.no_grad():
        out = model(ref["input/images"].cuda(), taps=["enc_blocks_24"], voxelize=False)
    errs = {
        "dino/enc_blocks_24": rel_err(out.aggregator.taps["enc_blocks_24"], ref["dino/enc_blocks_24"]),
        "aggregator/layer23": rel_err(out.aggregator.layers[-1], ref["aggregator/layer23"]),
        "camera/pose_enc_list": rel_err(torch.stack(out.pose_enc_list), ref["camera/pose_enc_list"]),
        "depth/depth": rel_err(out.depth, ref["depth/depth"]),
        "gs_head/raw_s2": rel_err(out.gs_raw[..., ::2, ::2], ref["gs_head/raw_s2"]),
        "novox/opacities": rel_err(out.splats[0].opacities, ref["novox/opacities"]),
    }
    assert all(e <= 1e-4 for e in errs.values()), errs
    # bf16 autocast (the default on CUDA) stays near the fp32 answer.
    model.config = replace(model.config, autocast=True)
    with torch.no_grad():
        out = model(ref["input/images"].cuda(), voxelize=False)
    assert rel_err(out.depth, ref["depth/depth"]) < 0.1  # a wrong path is off by O(1)
