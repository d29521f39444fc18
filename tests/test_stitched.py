"""The stitched decoder: grids, LoRA layout vs the official checkpoint, official-checkpoint merging, parity."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from vist3a import registry
from vist3a.errors import CheckpointError, InputError
from vist3a.stitching.stitched import StitchedDecoder, _renumber

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def mini() -> StitchedDecoder:
    torch.manual_seed(0)
    return registry.build("stitched-mini", weights=None)


def _inputs(seed: int = 0, latent_frames: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A raw latent and its RGB frames; one latent frame (= one view) keeps CPU tests fast."""
    g = torch.Generator().manual_seed(seed)
    frames = (latent_frames - 1) * 4 + 1
    return (torch.randn(1, 16, latent_frames, 32, 32, generator=g),
            torch.rand(1, frames, 3, 224, 224, generator=g))


def test_forward_shapes_and_input_errors(mini):
    latent, images = _inputs(latent_frames=2)
    out = mini(latent, images, voxelize=False)
    assert out.depth.shape == (1, 5, 224, 224, 1)
    assert len(out.gaussians[0]) == 5 * 224 * 224
    with pytest.raises(InputError, match="raw VAE latent"):
        mini(latent[:, :8], images)
    with pytest.raises(InputError, match="one RGB frame per upsampled latent frame"):
        mini(latent, images[:, :4])
    with pytest.raises(InputError, match="non-finite"):
        mini(latent * float("nan"), images)


def test_grid_mismatch_names_a_fitting_spec():
    recon = registry.build("anysplat-mini")
    with pytest.raises(InputError, match="try conv3d"):
        StitchedDecoder(recon, "conv3d_k5x3x3_o192_s1x1x1_p2x1x1", "enc_blocks_2", (16, 4, 32, 32))


def test_clean_and_official_forward_differ_only_by_pos_embed(mini):
    latent, images = _inputs()
    clean = mini(latent, images, voxelize=False).depth
    mini.official_compat = True
    try:
        compat = mini(latent, images, voxelize=False).depth
    finally:
        mini.official_compat = False
    assert not torch.allclose(clean, compat)
    pe = mini.recon.encoder.aggregator.patch_embed
    with torch.no_grad():
        saved = pe.pos_embed.clone()
        pe.pos_embed.zero_()  # with no position embedding, re-adding it changes nothing
        try:
            a = mini(latent, images, voxelize=False).depth
            mini.official_compat = True
            b = mini(latent, images, voxelize=False).depth
        finally:
            mini.official_compat = False
            pe.pos_embed.copy_(saved)
    torch.testing.assert_close(a, b)


def test_lora_layers_match_the_official_checkpoint_layout():
    dec = registry.build("anysplat-stitched", device="meta")
    dec.add_lora("r64,a32,d0.0,f0")
    ours = {n[len("recon."):-len(".lora_A")] for n, _ in dec.named_modules() if n.endswith(".lora_A")}
    rows = [line.rstrip("\n").split("\t") for line in (DATA / "stitched_checkpoint_manifest.tsv").open()][1:]
    official = {_renumber(r[1].rsplit(".", 1)[0], 2) for r in rows if r[0] == "lora"}
    assert ours == official
    assert len(ours) == 361
    trainable = dec.trainable_state_dict()
    for name in ("cls_token", "register_tokens", "mask_token"):
        assert f"recon.encoder.aggregator.patch_embed.{name}" in trainable
    assert "stitching_layer.weight" in trainable
    # nothing before the cut trains
    assert not any(".patch_embed.blocks.0." in k or ".patch_embed.blocks.1." in k for k in trainable)


def test_official_checkpoint_merge_equals_unmerged_peft(mini):
    """Linear LoRA pairs share loralib's layout: merging an official-format dict must equal peft's unmerged forward."""
    torch.manual_seed(3)
    base_state = {k: v.clone() for k, v in mini.state_dict().items()}
    student = registry.build("stitched-mini", weights=None)
    student.load_state_dict(base_state)
    student.add_lora("r2,a4")
    official: dict[str, object] = {"lora": {}}
    with torch.no_grad():
        for name, _mod in student.named_modules():
            if not name.endswith(".lora_B"):
                continue
            owner = name[: -len(".lora_B")]
            layer = student.get_submodule(owner)
            b_w = layer.lora_B["default"].weight
            a_w = layer.lora_A["default"].weight
            key = owner[len("recon."):]
            key = key.replace("patch_embed.blocks.", "patch_embed.blocks.#")
            if "#" in key:  # back to the official numbering (first k blocks deleted)
                head, tail = key.split("#")
                idx, rest = tail.split(".", 1)
                key = f"{head}{int(idx) - student.block}.{rest}"
            if isinstance(layer.base_layer, torch.nn.Linear):
                b_w.normal_(0, 0.02)
                official["lora"][f"{key}.lora_A"] = a_w.clone()
                official["lora"][f"{key}.lora_B"] = b_w.clone()
            else:  # conv pairs are left at zero (B = 0) here; their layout is tested in test_stitch_lora
                k = layer.base_layer.kernel_size[0]
                out_c, in_c = layer.base_layer.out_channels, layer.base_layer.in_channels
                official["lora"][f"{key}.lora_A"] = torch.zeros(2 * k, in_c * k)
                official["lora"][f"{key}.lora_B"] = torch.zeros(out_c * k, 2 * k)
            if layer.base_layer.bias is not None:
                layer.base_layer.bias.add_(0.01)
                official["lora"][f"{key}.bias"] = layer.base_layer.bias.clone()
        student.stitching_layer.weight.mul_(1.1)
        official["stitching_layer"] = {k: v.clone() for k, v in student.stitching_layer.state_dict().items()}
        pe = student.recon.encoder.aggregator.patch_embed
        for name in ("cls_token", "register_tokens", "mask_token"):
            getattr(pe, name).add_(0.05)
            official[name] = getattr(pe, name).clone()
    latent, images = _inputs(1)
    student.eval()
    want = student(latent, images, voxelize=False)

    merged = registry.build("stitched-mini", weights=None)
    merged.load_state_dict(base_state)
    merged.load_official(official, "r2,a4")
    got = merged(latent, images, voxelize=False)
    for a, b in ((got.depth, want.depth), (got.gs_raw, want.gs_raw), (got.pose_enc_list[-1], want.pose_enc_list[-1])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())

    bad = dict(official, lora={"encoder.nowhere.lora_A": torch.zeros(1)})
    fresh = registry.build("stitched-mini", weights=None)
    with pytest.raises(CheckpointError, match="match no layer"):
        fresh.load_official(bad, "r2,a4")
    with pytest.raises(CheckpointError, match="missing"):
        fresh.load_official({"lora": {}}, "r2,a4")


def test_trainable_state_round_trip(mini, tmp_path):
    dec = registry.build("stitched-mini", weights=None).add_lora("r2,a4")
    state = dec.trainable_state_dict()
    other = registry.build("stitched-mini", weights=None).add_lora("r2,a4")
    other.load_trainable_state_dict(state)
    for k, v in other.trainable_state_dict().items():
        torch.testing.assert_close(v, state[k])
    with pytest.raises(CheckpointError, match="missing"):
        other.load_trainable_state_dict({})


def _make_weights(shared: Path):
    spec = importlib.util.spec_from_file_location("make_weights", shared / "reference/parity/make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _close(x: torch.Tensor, ref: torch.Tensor, name: str, tol: float = 1e-4) -> None:
    err = (x.float() - ref.float()).abs().max().item()
    bound = tol * ref.abs().max().item()
    assert err <= bound, f"{name}: max abs err {err:.3g} > {bound:.3g}"


@pytest.mark.slow
def test_parity_with_official_stitched_decoder(shared_dir):
    """Full-size parity with ../shared/reference/parity/stitched_io.safetensors (builds 1.2 B parameters)."""
    from safetensors.torch import load_file

    parity = shared_dir / "reference/parity"
    mw = _make_weights(shared_dir)
    mw.self_check()
    from vist3a.models.anysplat import anysplat

    base = anysplat(device="cpu", weights=mw.make_state_dict(str(shared_dir / "reference/anysplat_state_dict_manifest.tsv")))
    dec = StitchedDecoder(base, official_compat=True, latent_grid=(16, 2, 32, 32), image_size=224)
    dec.load_official(parity / "stitched_checkpoint.safetensors", "r4,a8,d0.0,f0")
    io = load_file(str(parity / "stitched_io.safetensors"))
    images = (io["input/feedforward_image"].permute(0, 2, 1, 3, 4) + 1) / 2
    with torch.no_grad():
        dec.eval()
        _close(dec.tokens(io["input/latent"]), io["stitch/tokens"].permute(0, 2, 3, 4, 1).flatten(2, 3), "tokens")
        out = dec(io["input/latent"], images, voxelize=True)
    for i, ref in enumerate(io["camera/pose_enc_list"]):
        _close(out.pose_enc_list[i], ref, f"pose_enc_list[{i}]")
    _close(out.c2w, io["camera/extrinsic_c2w"], "extrinsic_c2w")
    _close(out.K_normalized, io["camera/intrinsic_norm"], "intrinsic_norm")
    _close(out.depth, io["depth/depth"], "depth")
    _close(out.depth_conf, io["depth/conf"], "conf")
    _close(out.points, io["points/world"], "points")
    _close(out.gs_raw[..., ::4, ::4], io["gs_head/raw_s4"], "gs_raw")
    g_ref = io["vox/means"].shape[1]
    assert abs(out.splats[0].means.shape[1] - g_ref) <= 0.005 * g_ref


def test_merge_lora_keeps_the_forward_and_drops_the_lora_branch(mini):
    torch.manual_seed(4)
    dec = registry.build("stitched-mini", weights=None)
    dec.load_state_dict(mini.state_dict())
    dec.add_lora("r2,a4")
    with torch.no_grad():
        for name, p in dec.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # a non-zero ΔW, so merging changes the base weights
    dec.eval()
    latent, images = _inputs(2)
    want = dec(latent, images, voxelize=False)
    base = dict(dec.named_parameters())["recon.encoder.aggregator.frame_blocks.0.attn.qkv.base_layer.weight"].clone()
    dec.merge_lora().merge_lora()  # idempotent
    merged_w = dict(dec.named_parameters())["recon.encoder.aggregator.frame_blocks.0.attn.qkv.base_layer.weight"]
    assert not torch.equal(base, merged_w)
    got = dec(latent, images, voxelize=False)
    for a, b in ((got.depth, want.depth), (got.gs_raw, want.gs_raw), (got.pose_enc_list[-1], want.pose_enc_list[-1])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
