"""Stitching step 2: exact resume, gloo DDP = one process, checkpoint formats (ours <-> official), the CLI."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from vist3a.errors import CheckpointError, InputError
from vist3a.stitching import export
from vist3a.stitching.stitched import StitchedDecoder
from vist3a.stitching.train import StepSampler, TrainConfig, make_teacher, prepare_models, train_stitched

# a few-thousand-parameter AnySplat (same classes): 56² input, 4x4 tokens; VAE 64² -> 8x8 latent
TINY_RECON = dict(
    embed_dim=48, dino_depth=3, dino_num_heads=2, depth=2, num_heads=2, intermediate_layer_idx=(0, 0, 1, 1),
    camera_trunk_depth=1, camera_num_heads=2, dpt_features=16, dpt_out_channels=(8, 16, 32, 32), sh_degree=1,
)  # fmt: skip
TINY_SPEC = "conv3d_k5x3x3_o48_s1x2x2_p2x1x1"
TINY_VAE = dict(base_dim=8)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def _tiny(seed: int = 0, lora: str | None = "r2,a4"):
    from vist3a.models.anysplat import anysplat_mini
    from vist3a.models.video import wan_mini

    torch.manual_seed(seed)
    recon = anysplat_mini(**TINY_RECON)
    dec = StitchedDecoder(recon, TINY_SPEC, "enc_blocks_1", (16, 2, 8, 8), image_size=56)
    teacher = make_teacher(dec)
    if lora:
        prepare_models(dec, teacher, lora, grad_checkpointing=True)
    video = wan_mini(components=("vae",), vae_config=TINY_VAE, seed=seed)
    return dec, teacher, video


class Clips(torch.utils.data.Dataset):
    """Random clips whose frames draw from torch's global RNG (as a dataset with random windows does)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> dict:
        base = torch.rand(1, 3, 1, 1)  # global RNG: must repeat on resume
        return {"images": (base + 0.3 * torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(i))).clamp(0, 1)}


def _cfg(out, **kw) -> TrainConfig:
    return TrainConfig(out=out, steps=kw.pop("steps", 4), frames=(1, 5), warmup=1, ckpt_every=2, **kw)


def test_step_sampler_covers_each_epoch_and_shards():
    s0 = list(StepSampler(7, 1, 0, 2, seed=3, start=0, steps=6))
    s1 = list(StepSampler(7, 1, 1, 2, seed=3, start=0, steps=6))
    first_epoch = [s0[i][0] for i in range(3)] + [s1[i][0] for i in range(3)]
    assert len(set(first_epoch)) == 6  # 3 steps x 2 ranks, no repeats within an epoch (one dropped)
    assert sorted(p for _, p in s0 + s1) == list(range(12))
    assert list(StepSampler(7, 1, 0, 2, seed=3, start=4, steps=6)) == s0[4:]  # resume = the tail
    with pytest.raises(InputError, match="fewer than one step"):
        StepSampler(1, 1, 0, 2, 0, 0, 1)


def test_resume_after_a_kill_reproduces_the_loss_curve(tmp_path):
    dec, teacher, video = _tiny()
    full = train_stitched(dec, teacher, video, Clips(), _cfg(tmp_path / "a"), progress=False)
    assert full.finished and len(full.losses) == 4
    assert len(set(full.losses)) == 4 and all(x > 0 for x in full.losses)
    dec, teacher, video = _tiny()
    part = train_stitched(dec, teacher, video, Clips(), _cfg(tmp_path / "b"), stop_after=2, progress=False)
    assert not part.finished and part.losses == full.losses[:2]
    assert not (tmp_path / "b" / "stitched.safetensors").exists()
    with pytest.raises(InputError, match="--resume"):
        train_stitched(*_tiny(), Clips(), _cfg(tmp_path / "b"), progress=False)
    dec2, teacher, video = _tiny()  # a fresh process (same base weights) ...
    torch.manual_seed(1234)  # ... in another RNG state; LoRA's own random init is overwritten by the checkpoint
    with torch.no_grad():
        dec2.stitching_layer.weight.mul_(3.0)
    resumed = train_stitched(dec2, teacher, video, Clips(), _cfg(tmp_path / "b"), resume=True, progress=False)
    assert resumed.losses == full.losses  # exactly
    # the final weights: our format, reloaded, equal the trained ones
    loaded = export.load_trained(tmp_path / "b", recon=_tiny(seed=0, lora=None)[0].recon)
    for k, v in dec2.trainable_state_dict().items():
        torch.testing.assert_close(loaded.trainable_state_dict()[k], v, rtol=0, atol=0)
    doc = json.loads((tmp_path / "b" / "stitched.json").read_text())
    assert doc["decoder"]["lora"]["rank"] == 2 and doc["train"]["steps_done"] == 4
    assert list((tmp_path / "a" / "tb").iterdir())  # tensorboard events


def test_time_budget_stops_exports_and_resumes(tmp_path):
    """--minutes: checkpoint + weights so far after the first step past the budget; --resume finishes the curve."""
    ticks = iter([0.0, 30.0, 120.0] + [999.0] * 10)  # deadline at 60 s: step 1 ends at 30 s, step 2 at 120 s
    full = train_stitched(*_tiny(), Clips(), _cfg(tmp_path / "a"), progress=False)
    part = train_stitched(*_tiny(), Clips(), _cfg(tmp_path / "b", minutes=1.0), progress=False,
                          clock=lambda: next(ticks))  # fmt: skip
    assert not part.finished and part.step == 2 and part.losses == full.losses[:2]
    doc = json.loads((tmp_path / "b" / "stitched.json").read_text())
    assert doc["train"]["finished"] is False and doc["train"]["steps_done"] == 2
    rest = train_stitched(*_tiny(), Clips(), _cfg(tmp_path / "b"), resume=True, progress=False)
    assert rest.finished and rest.losses == full.losses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, folder: str, out) -> None:
    from vist3a.train import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    ctx = distributed.init(device="cpu")
    dec, teacher, video = _tiny()
    res = train_stitched(dec, teacher, video, Clips(), _cfg(folder, steps=2, batch=1), ctx=ctx, progress=False)
    out[rank] = (res.losses, {k: v.clone() for k, v in dec.trainable_state_dict().items()})
    distributed.shutdown()


@pytest.mark.slow  # ~60-120 s on a loaded 2-core CPU: each spawned process imports torch, diffusers and peft
def test_gloo_ddp_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    world, port = 2, _free_port()
    out = mp.Manager().dict()
    mp.spawn(_ddp_worker, args=(world, port, str(tmp_path / "ddp"), out), nprocs=world, join=True)
    dec, teacher, video = _tiny()
    ref = train_stitched(dec, teacher, video, Clips(), _cfg(tmp_path / "one", steps=2, batch=2), progress=False)
    for r in range(world):
        losses, state = out[r]
        assert losses == pytest.approx(ref.losses, rel=1e-4)
        for k, v in dec.trainable_state_dict().items():
            torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-6)
    assert (tmp_path / "ddp" / "stitched.safetensors").is_file()


def test_official_format_round_trip_and_merged_export(tmp_path):
    dec, _, _ = _tiny()
    with torch.no_grad():  # a trained-looking state: non-zero B everywhere
        g = torch.Generator().manual_seed(1)
        for _n, p in dec.named_parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    convs = [n for n, m in export._lora_layers(dec).items() if isinstance(m.base_layer, torch.nn.Conv2d)]
    assert any(m.base_layer.kernel_size[0] > 1 for n, m in export._lora_layers(dec).items() if n in convs)
    official = export.to_official(dec)
    # loralib conv layout: A [r·k, in·k], B [out·k, r·k]
    name = next(n for n in convs if export._lora_layers(dec)[n].base_layer.kernel_size[0] == 3)
    base = export._lora_layers(dec)[name].base_layer
    key = export._official_key(name, dec.block)
    assert official["lora"][f"{key}.lora_A"].shape == (2 * 3, base.in_channels * 3)
    assert official["lora"][f"{key}.lora_B"].shape == (base.out_channels * 3, 2 * 3)
    path = export.save_official(dec, tmp_path / "anysplat_stitched.pth")

    latent = torch.randn(1, 16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    images = torch.rand(1, 1, 3, 56, 56, generator=torch.Generator().manual_seed(3))
    dec.eval()
    want = dec(latent, images, voxelize=False)
    # back into peft (exact: our conv deltas have rank <= r)
    back, _, _ = _tiny()  # same base weights, fresh LoRA
    errors = export.from_official(back, path)
    assert errors and max(errors.values()) < 1e-5
    got = back.eval()(latent, images, voxelize=False)
    torch.testing.assert_close(got.gs_raw, want.gs_raw, rtol=1e-4, atol=1e-4)
    # merged by the official loader (exact merge) and by our merged export
    plain, _, _ = _tiny(seed=0, lora=None)
    plain.load_official(path, "r2,a4")
    torch.testing.assert_close(plain.eval()(latent, images, voxelize=False).depth, want.depth, rtol=1e-4, atol=1e-4)
    merged_path = export.save_merged(dec, tmp_path / "merged.safetensors")
    from safetensors.torch import load_file

    fresh, _, _ = _tiny(lora=None)
    fresh.load_state_dict(load_file(str(merged_path)))
    torch.testing.assert_close(fresh.eval()(latent, images, voxelize=False).depth, want.depth, rtol=1e-4, atol=1e-4)
    # an official conv delta of rank > r cannot go into peft rank r: a clear error
    bad = torch.load(path, weights_only=True)
    bad["lora"][f"{key}.lora_A"] = torch.randn_like(bad["lora"][f"{key}.lora_A"])
    bad["lora"][f"{key}.lora_B"] = torch.randn_like(bad["lora"][f"{key}.lora_B"])
    with pytest.raises(CheckpointError, match="load_official"):
        export.from_official(_tiny()[0], bad)


def _init_file(path):
    from vist3a.stitching.search import save_init
    from vist3a.stitching.spec import parse_spec

    g = torch.Generator().manual_seed(0)
    state = {"weight": 0.05 * torch.randn(48, 16, 5, 3, 3, generator=g), "bias": torch.zeros(48)}
    return save_init(path, state, parse_spec(TINY_SPEC), "enc_blocks_1", 1e-4)


def _tiny_sets() -> list[str]:
    out = []
    for k, v in TINY_RECON.items():
        out += ["--recon-set", f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"]
    return out


def test_cli_train_on_procedural_world_then_convert(tmp_path, capsys):
    from vist3a.cli import main

    init = _init_file(tmp_path / "init_enc_blocks_1.safetensors")
    out = tmp_path / "run"
    argv = ["stitch", "train", "--video", "wan-mini", "--recon", "anysplat-mini", *_tiny_sets(),
            "--recon-resolution", "56", "--resolution", "64", "--init", str(init), "--world", "2",
            "--out", str(out), "--steps", "2", "--frames", "1", "--lora", "r2,a4", "--warmup", "1",
            "--ckpt-every", "1", "--workers", "0", "--device", "cpu", "--loss-weight", "depth_grad=0.05",
            "--student-rgb", "decoded"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert "trained 2 steps" in capsys.readouterr().out
    doc = json.loads((out / "stitched.json").read_text())
    assert doc["train"]["weights"]["depth_grad"] == 0.05 and doc["train"]["weights"]["scales"] == 10.0
    assert doc["train"]["student_rgb"] == "decoded"
    assert doc["recon"] == "anysplat-mini" and doc["decoder"]["layer"] == "enc_blocks_1"
    assert doc["decoder"]["image_size"] == 56 and doc["recon_overrides"]["embed_dim"] == 48
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*.pt")) == ["step_00000001.pt", "step_00000002.pt"]
    # again without --resume: refused; with --resume at the end: nothing left to do
    assert main(argv) == 1
    assert "--resume" in capsys.readouterr().err
    # ours -> official -> ours
    pth = tmp_path / "anysplat_stitched.pth"
    assert main(["stitch", "convert", str(out), "--to", "official", "--out", str(pth)]) == 0
    assert set(torch.load(pth, weights_only=True)) == {"lora", "stitching_layer", "cls_token", "register_tokens",
                                                       "mask_token"}  # fmt: skip
    back = tmp_path / "back"
    assert main(["stitch", "convert", str(pth), "--to", "ours", "--like", str(out), "--out", str(back)]) == 0
    a = export.load_trained(out).trainable_state_dict()
    b = export.load_trained(back).trainable_state_dict()
    for k in a:
        if ".lora_" not in k:  # conv LoRA factors differ by an SVD rotation; the product is checked elsewhere
            torch.testing.assert_close(b[k], a[k])


def test_cli_train_input_errors(tmp_path, capsys):
    from vist3a.cli import main

    base = ["stitch", "train", "--video", "wan-mini", "--recon", "anysplat-mini", "--world", "1", "--out",
            str(tmp_path / "x"), "--steps", "1"]  # fmt: skip
    assert main([*base, "--frames", "4,9"]) == 1
    assert "1+4k" in capsys.readouterr().err
    assert main([*base, "--lora", "q5"]) == 1
    assert "LoRA config chunk" in capsys.readouterr().err
    assert main([*base, "--loss-weight", "depht=1"]) == 1
    assert "--loss-weight expects TERM=VALUE" in capsys.readouterr().err
    assert main([*base, "--loss-weight", "depth=-1"]) == 1
    assert "finite number >= 0" in capsys.readouterr().err


@pytest.mark.gpu
def test_training_steps_on_cuda_bf16(tmp_path):
    """The mini pair trains on CUDA under bf16 autocast with gradient checkpointing; files are written."""
    from vist3a import registry
    from vist3a.world import WorldDataset

    torch.manual_seed(0)
    dec = registry.build("stitched-mini", device="cuda", weights=None)
    teacher = make_teacher(dec)
    prepare_models(dec, teacher, "r8,a8", grad_checkpointing=True)
    video = registry.build("wan-mini", device="cuda", components=("vae",), seed=0)
    cfg = TrainConfig(out=tmp_path, steps=3, frames=(5, 9), warmup=1, ckpt_every=2)
    res = train_stitched(dec, teacher, video, WorldDataset(4, frames=9, size=256), cfg, progress=False)
    assert res.finished and len(res.losses) == 3 and all(torch.isfinite(torch.tensor(res.losses)))
    loaded = export.load_trained(tmp_path, device="cuda", recon=registry.build("anysplat-mini", device="cuda"))
    assert loaded.image_size == 224


def test_stitched_preset_trains_from_a_fresh_layer_over_the_shipped_recon(caplog):
    """`stitch train --stitched stitched-mini`: the student is a fresh stitching layer (no LoRA yet) over the
    shipped anysplat-mini, and the teacher is that base network — not the shipped decoder with its LoRA."""
    from vist3a import registry
    from vist3a.cli import build_parser
    from vist3a.commands.stitch import build_training_models
    from vist3a.mini_assets import shipped_folder

    if shipped_folder("anysplat-mini") is None:
        pytest.skip("this install carries no shipped mini set")
    args = build_parser().parse_args(["stitch", "train", "--video", "wan-mini", "--stitched", "stitched-mini",
                                      "--world", "1", "--steps", "1", "--out", "unused", "--device", "cpu"])  # fmt: skip
    with caplog.at_level("WARNING"):
        student, teacher, _, _ = build_training_models(args, torch.device("cpu"), 13)
    assert student.lora is None and "randomly initialised" not in caplog.text
    want = registry.build("anysplat-mini").state_dict()
    key = "encoder.aggregator.frame_blocks.0.attn.qkv.weight"
    torch.testing.assert_close(teacher.state_dict()[key], want[key], rtol=0, atol=0)
    torch.testing.assert_close(student.recon.state_dict()[key], want[key], rtol=0, atol=0)


def _spy_steps(monkeypatch) -> tuple[list, list]:  # noqa: ANN001
    """Record each training step's (latent, student RGB, pixel weight) and the teacher's input frames."""
    from vist3a.stitching import train as st

    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    teacher_in: list[torch.Tensor] = []
    forward, targets = st.DistillStep.forward, st.teacher_targets

    def spy_forward(self, latent, images, teacher, pixel_weight=None):  # noqa: ANN001, ANN202
        pw = None if pixel_weight is None else pixel_weight.clone()
        seen.append((latent.detach().clone(), images.detach().clone(), pw))
        return forward(self, latent, images, teacher, pixel_weight)

    def spy_targets(teacher, images):  # noqa: ANN001, ANN202
        teacher_in.append(images.detach().clone())
        return targets(teacher, images)

    monkeypatch.setattr(st.DistillStep, "forward", spy_forward)
    monkeypatch.setattr(st, "teacher_targets", spy_targets)
    return seen, teacher_in


def test_student_rgb_decoded_feeds_the_vae_decode_of_its_latent(tmp_path, monkeypatch):
    """--student-rgb decoded: the student's RGB branch gets the VAE decode of the very latent it is given, in [0, 1]
    and resized to the reconstruction size (as generation does), while the teacher keeps the clip's frames; the
    default ("frames") gives the student the teacher's input. A bad value is one clear error."""
    import torch.nn.functional as F

    seen, teacher_in = _spy_steps(monkeypatch)
    for mode in ("decoded", "frames"):
        seen.clear(), teacher_in.clear()
        dec, teacher, video = _tiny()
        res = train_stitched(dec, teacher, video, Clips(), _cfg(tmp_path / mode, steps=2, student_rgb=mode),
                             progress=False)  # fmt: skip
        assert res.finished and len(seen) == 2 and all(torch.isfinite(torch.tensor(res.losses)))
        for (latent, images, _), frames in zip(seen, teacher_in, strict=True):
            with torch.no_grad():
                rgb = video.decode(latent).float().add(1).div(2).clamp(0, 1)  # [B,3,T,H,W]
            b, _, t = rgb.shape[:3]
            want = F.interpolate(rgb.permute(0, 2, 1, 3, 4).reshape(b * t, 3, *rgb.shape[-2:]), size=(56, 56),
                                 mode="bilinear", align_corners=False).clamp(0, 1).reshape(b, t, 3, 56, 56)  # fmt: skip
            assert images.shape == frames.shape == (b, t, 3, 56, 56)
            if mode == "decoded":
                torch.testing.assert_close(images, want)
                assert (images - frames).abs().max() > 1e-2  # the random VAE's decode is not the clip
            else:
                assert torch.equal(images, frames)
    with pytest.raises(InputError, match="--student-rgb must be one of frames, decoded"):
        _cfg(tmp_path / "bad", student_rgb="latent").check()


def test_object_weight_weights_the_teachers_saturated_pixels(tmp_path, monkeypatch):
    """--object-weight W: each step's loss gets W on the saturated pixels of the teacher's frames and 1 elsewhere
    (the judge's object pixels); the default 1 passes no weight (the paper's loss). Bad values are one clear error."""
    from vist3a.world.judge import saturated

    seen, teacher_in = _spy_steps(monkeypatch)
    for w in (3.0, 1.0):
        seen.clear(), teacher_in.clear()
        dec, teacher, video = _tiny()
        res = train_stitched(dec, teacher, video, Clips(), _cfg(tmp_path / str(w), steps=2, object_weight=w),
                             progress=False)  # fmt: skip
        assert res.finished and len(seen) == 2
        for (_, _, pw), frames in zip(seen, teacher_in, strict=True):
            if w == 1.0:
                assert pw is None
                continue
            obj = saturated(frames)[:, :, 0]
            assert 0 < obj.float().mean() < 1  # the clips hold both kinds of pixel
            assert pw.shape == obj.shape and torch.equal(pw, torch.where(obj, 3.0, 1.0))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="--object-weight must be a finite number > 0"):
            _cfg(tmp_path / "bad", object_weight=bad).check()


def test_init_stitched_continues_a_trained_decoder_over_a_new_base(tmp_path, capsys):
    """`stitch train --recon R --recon-weights NEW --init-stitched DIR`: the student carries DIR's layer, spec, LoRA
    and trained state exactly, over NEW's weights; the teacher is NEW itself (no LoRA)."""
    from vist3a.cli import build_parser, main
    from vist3a.commands.stitch import build_training_models
    from vist3a.models.anysplat import anysplat_mini

    dec, _, _ = _tiny(seed=1)
    with torch.no_grad():  # a "trained" state: LoRA B no longer zero
        for p in dec.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    init = export.save_trained(dec, tmp_path / "init", {"recon": "anysplat-mini"})
    torch.manual_seed(5)
    new = anysplat_mini(**TINY_RECON)
    new.save_pretrained(tmp_path / "new", preset="anysplat-mini")
    argv = ["stitch", "train", "--video", "wan-mini", "--recon", "anysplat-mini", *_tiny_sets(), "--recon-weights",
            str(tmp_path / "new"), "--init-stitched", str(init), "--world", "1", "--steps", "1", "--out",
            str(tmp_path / "run"), "--resolution", "64", "--device", "cpu"]  # fmt: skip
    student, teacher, _, meta = build_training_models(build_parser().parse_args(argv), torch.device("cpu"), 5)
    assert (student.layer, student.spec, student.lora) == (dec.layer, dec.spec, dec.lora)
    got, want = student.trainable_state_dict(), dec.trainable_state_dict()
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
    key = "encoder.aggregator.frame_blocks.0.attn.qkv.weight"
    ref = new.state_dict()[key]
    torch.testing.assert_close(teacher.state_dict()[key], ref, rtol=0, atol=0)
    torch.testing.assert_close(student.recon.encoder.aggregator.frame_blocks[0].attn.qkv.base_layer.weight, ref,
                               rtol=0, atol=0)  # fmt: skip
    assert not any("lora_" in n for n, _ in teacher.named_parameters())
    assert meta["init_stitched"] == str(init)
    assert main([*argv, "--frames", "5", "--workers", "0", "--warmup", "1"]) == 0, capsys.readouterr().err
    assert "trained 1 steps" in capsys.readouterr().out
    doc = json.loads((tmp_path / "run" / "stitched.json").read_text())
    assert doc["init_stitched"] == str(init) and doc["decoder"]["lora"]["rank"] == 2
    # one-line refusals: with a layer-search init too, and from a folder that is no stitched decoder
    argv[argv.index("--out") + 1] = str(tmp_path / "run2")
    assert main([*argv, "--init", str(init)]) == 1
    assert "--init-stitched brings its own layer" in capsys.readouterr().err
    bad = [*argv[: argv.index("--init-stitched") + 1], str(tmp_path / "new"), *argv[argv.index("--init-stitched") + 2:]]
    assert main(bad) == 1
    assert "not a trained stitched decoder" in capsys.readouterr().err


def test_stored_latents_go_to_the_student_unencoded(tmp_path, monkeypatch):
    """A dataset whose items carry ``latents`` (a generated set): the student gets exactly those latents (no VAE
    encode) while the teacher and the RGB branch get the item's frames; a step of another frame count is one error."""
    seen, teacher_in = _spy_steps(monkeypatch)

    class Stored(Clips):
        def __getitem__(self, i: int) -> dict:
            g = torch.Generator().manual_seed(10 + i)
            return {**super().__getitem__(i), "latents": torch.randn(16, 2, 8, 8, generator=g)}

    dec, teacher, video = _tiny()
    monkeypatch.setattr(video, "encode", lambda *a, **k: pytest.fail("a stored latent was encoded again"))
    cfg = TrainConfig(out=tmp_path / "s", steps=3, frames=(5,), warmup=1, ckpt_every=2, batch=1)
    res = train_stitched(dec, teacher, video, Stored(), cfg, progress=False)
    assert res.finished and len(seen) == 3 and all(torch.isfinite(torch.tensor(res.losses)))
    stored = torch.stack([Stored()[i]["latents"] for i in range(3)])
    for latent, _, _ in seen:
        assert latent.shape == (1, 16, 2, 8, 8)
        assert any(torch.equal(latent[0], z) for z in stored)  # one of the set's latents, untouched
    assert all(torch.equal(images, frames) for (_, images, _), frames in zip(seen, teacher_in, strict=True))
    dec, teacher, video = _tiny()
    with pytest.raises(InputError, match="stored latents have 2 latent frames, a 1-frame step needs 1"):
        train_stitched(dec, teacher, video, Stored(), TrainConfig(out=tmp_path / "f", steps=1, frames=(1,), warmup=1),
                       progress=False)  # fmt: skip
