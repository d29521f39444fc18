"""Numerical parity with the official AnySplat (fixtures in ``../shared/reference/parity``).

Weights come from the fixture's ``make_weights.py`` (deterministic, torch only); the official model
was run in fp32 on CPU on a 3-view 224² input. Tolerance (parity README §7): per tensor
``max|x - ref| <= TOL * max|ref|``. The cheap tests (DINO front, camera maths) run by default; the
full 1.19 B-parameter forward (~5 GB fp32, minutes on 2 CPU cores) is ``@pytest.mark.slow``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anysplat_parity import LazyStateDict, fixture_tensors, load_make_weights, rel_err  # noqa: E402
from vist3a.models.aggregator import normalize_images  # noqa: E402
from vist3a.models.dinov2 import DinoV2  # noqa: E402

TOL = 1e-4  # README §7: > 20x the largest fp32-vs-fp64 spread, far below real mistakes (~1e-2)
MANIFEST = "reference/anysplat_state_dict_manifest.tsv"


@pytest.fixture(scope="module")
def make_weights(shared_dir: Path):
    mw = load_make_weights(shared_dir)
    assert mw.self_check(verbose=False), (
        "this torch draws different random numbers: the fixtures do not apply"
    )
    return mw


@pytest.fixture(scope="module")
def ref(shared_dir: Path) -> dict[str, torch.Tensor]:
    return fixture_tensors(shared_dir)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_dino_front_matches_official_enc_blocks_1_and_2(shared_dir: Path, make_weights, ref) -> None:
    """Patch embedding, bicubic-antialiased position embedding (37² → 16²), registers and DINO blocks 1-2."""
    dino = DinoV2(depth=2)
    sd = LazyStateDict(
        make_weights,
        shared_dir / MANIFEST,
        prefix="encoder.aggregator.patch_embed.",
        keep=lambda k: not k.startswith("blocks.") or k.split(".")[1] in ("0", "1"),
    )
    from vist3a.models.checkpoint import load_weights

    load_weights(dino, sd)
    images = ref["input/images"][0]  # [3, 3, 224, 224]
    with torch.no_grad():
        out = dino(normalize_images(images, round_bf16=True), taps=["enc_blocks_1", "enc_blocks_2"])
        unrounded = dino(normalize_images(images, round_bf16=False), taps=["enc_blocks_2"])
    for k in (1, 2):
        err = rel_err(out[f"enc_blocks_{k}"][None], ref[f"dino/enc_blocks_{k}"])
        assert err <= TOL, f"enc_blocks_{k}: {err:.2e}"
    # The bf16 rounding of the input (parity trap, README §6) is visible far above the tolerance.
    assert rel_err(unrounded["enc_blocks_2"][None], ref["dino/enc_blocks_2"]) > 10 * TOL


# --- full model (slow) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(shared_dir: Path, make_weights, ref):
    from vist3a.models.anysplat import anysplat

    model = anysplat(weights=LazyStateDict(make_weights, shared_dir / MANIFEST))
    with torch.no_grad():
        out = model(ref["input/images"], taps=[f"enc_blocks_{k}" for k in (1, 2, 12, 24)], voxelize=False)
    return model, out


@pytest.mark.slow
def test_full_backbone_and_cameras(full_run, ref) -> None:
    _, out = full_run
    checks = {f"dino/enc_blocks_{k}": out.aggregator.taps[f"enc_blocks_{k}"] for k in (1, 2, 12, 24)}
    checks["aggregator/layer23"] = out.aggregator.layers[-1]
    checks["camera/pose_enc_list"] = torch.stack(out.pose_enc_list)
    checks["camera/extrinsic_c2w"] = out.c2w
    checks["camera/intrinsic_norm"] = out.K_normalized
    errs = {k: rel_err(v, ref[k]) for k, v in checks.items()}
    assert all(e <= TOL for e in errs.values()), errs


@pytest.mark.slow
def test_full_heads_and_pixel_gaussians(full_run, ref) -> None:
    _, out = full_run
    checks = {
        "depth/depth": out.depth,
        "depth/conf": out.depth_conf,
        "points/world": out.points,
        "gs_head/raw_s2": out.gs_raw[..., ::2, ::2],
    }
    s = out.splats[0]
    for name in ("means", "scales", "rotations", "opacities"):
        checks[f"novox/{name}"] = getattr(s, name)
    checks["novox/harmonics_s16"] = s.harmonics[:, ::16]
    checks["novox/covariances_s16"] = s.covariances[:, ::16]
    errs = {k: rel_err(v, ref[k]) for k, v in checks.items()}
    assert all(e <= TOL for e in errs.values()), errs
    # Our conventions carry the same Gaussians: wxyz = rolled xyzw, sh = harmonics transposed.
    g = out.gaussians[0]
    assert rel_err(g.quats[:, [1, 2, 3, 0]], ref["novox/rotations"][0]) <= TOL
    assert rel_err(g.sh[::16].transpose(1, 2), ref["novox/harmonics_s16"][0]) <= TOL


@pytest.mark.slow
def test_full_voxelised_gaussians(full_run, ref) -> None:
    model, out = full_run
    # Preferred check (README §7): our fusion on the reference points with our head output.
    splats, _, inverse = model._gaussians(ref["points/world"], out.gs_raw, voxelize=True)
    assert torch.equal(inverse[0].int(), ref["vox/pixel_to_voxel"])
    s = splats[0]
    assert s.means.shape[1] == ref["vox/means"].shape[1] == 147_775
    errs = {
        f"vox/{n}": rel_err(getattr(s, n), ref[f"vox/{n}"])
        for n in ("means", "scales", "rotations", "opacities")
    }
    errs["vox/harmonics_s16"] = rel_err(s.harmonics[:, ::16], ref["vox/harmonics_s16"])
    errs["vox/covariances_s16"] = rel_err(s.covariances[:, ::16], ref["vox/covariances_s16"])
    assert all(e <= TOL for e in errs.values()), errs
    # End to end with our own points: few boundary pixels may change voxel.
    splats, _, inverse = model._gaussians(out.points, out.gs_raw, voxelize=True)
    ids = torch.round(out.points.reshape(-1, 3) / 0.002).int()
    ref_ids = ref["vox/voxel_ids"].int()[ref["vox/pixel_to_voxel"].long()]
    changed = int((ids != ref_ids).any(-1).sum())
    assert changed <= 0.005 * ids.shape[0]
    assert abs(splats[0].means.shape[1] - 147_775) <= 0.005 * 147_775


def test_stitched_entry_rebuilds_the_official_block_input(shared_dir: Path, make_weights) -> None:
    """VIST3A's stitched model re-adds cls, position embedding and registers to the stitched tokens.

    ``DinoV2.embed_patch_tokens(add_pos_embed=True)`` must give the official first-block input exactly
    (``stitched_io.safetensors``: ``dino/block_input`` from ``stitch/tokens``).
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    parity = shared_dir / "reference" / "parity"
    ckpt = load_file(str(parity / "stitched_checkpoint.safetensors"))
    dino = DinoV2(depth=0)
    with torch.no_grad():
        dino.pos_embed.copy_(
            make_weights.make_tensor("encoder.aggregator.patch_embed.pos_embed", (1, 1370, 1024))
        )
        dino.cls_token.copy_(ckpt["cls_token"])
        dino.register_tokens.copy_(ckpt["register_tokens"])
    with safe_open(str(parity / "stitched_io.safetensors"), "pt") as f:
        tokens = f.get_tensor("stitch/tokens")  # [1, 1024, 5, 16, 16]
        ref = f.get_tensor("dino/block_input")  # [5, 261, 1024]
    patches = tokens.permute(0, 2, 3, 4, 1).reshape(5, 256, 1024)  # (b v) (h w) c
    with torch.no_grad():
        full = dino.embed_patch_tokens(patches, (16, 16), add_pos_embed=True)
    assert torch.equal(full, ref)
