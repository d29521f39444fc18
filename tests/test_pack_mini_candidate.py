"""scripts/pack_mini_candidate.py: device-run outputs -> a mini asset folder (how the shipped weights are made)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from repo_scripts import load_script


def _script():
    return load_script("scripts/pack_mini_candidate.py")


def _base(root: Path) -> Path:
    """A fake shipped set: tensors are fp16 except one fp32 tensor in the DiT (a module diffusers keeps in fp32)."""
    (root / "wan-mini" / "vae").mkdir(parents=True)
    (root / "wan-mini" / "transformer").mkdir(parents=True)
    (root / "anysplat-mini").mkdir()
    (root / "stitched-mini").mkdir()
    for sub in ("vae", "transformer"):
        (root / "wan-mini" / sub / "config.json").write_text("{}")
    save_file({"w": torch.ones(2, dtype=torch.float16), "norm": torch.ones(2)},
              str(root / "wan-mini" / "transformer" / "diffusion_pytorch_model.safetensors"))  # fmt: skip
    save_file({"w": torch.ones(2, dtype=torch.float16)}, str(root / "wan-mini" / "vae" / "diffusion_pytorch_model.safetensors"))
    (root / "wan-mini" / "video_model.json").write_text('{"flow_shift": 5}')
    save_file({"w": torch.zeros(3, dtype=torch.float16)}, str(root / "anysplat-mini" / "model.safetensors"))
    (root / "anysplat-mini" / "vist3a_model.json").write_text("{}")
    save_file({"w": torch.zeros(3, dtype=torch.float16)}, str(root / "stitched-mini" / "stitched.safetensors"))
    (root / "stitched-mini" / "stitched.json").write_text('{"video_weights": "shipped", "recon_weights": "shipped"}')
    return root


def test_pack_casts_the_new_parts_to_fp16_and_keeps_the_rest(tmp_path):
    base = _base(tmp_path / "base")
    run = tmp_path / "run" / "stitch"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_100.pt").write_bytes(b"x")
    w = torch.tensor([0.1, -2.5, 3.0e-3], dtype=torch.float32)
    save_file({"lora.A": w, "step": torch.tensor([7])}, str(run / "stitched.safetensors"), metadata={"format": "v1"})
    (run / "stitched.json").write_text(json.dumps({"video_weights": "/dev/run/wan", "recon_weights": "/dev/run/r", "x": 1}))
    out = tmp_path / "cand"
    assert _script().main(["--out", str(out), "--base", str(base), "--stitched", str(run)]) == 0
    got = load_file(str(out / "stitched-mini" / "stitched.safetensors"))
    assert got["lora.A"].dtype == torch.float16 and torch.equal(got["lora.A"], w.half())
    assert got["step"].dtype == torch.int64  # integer tensors untouched
    doc = json.loads((out / "stitched-mini" / "stitched.json").read_text())
    assert doc == {"video_weights": "shipped", "recon_weights": "shipped", "x": 1}
    assert not (out / "stitched-mini" / "checkpoints").exists()
    assert (out / "stitched-mini").stat().st_mode & 0o777 == 0o755
    # parts not given come from the base byte for byte: the DiT's fp32 tensor stays fp32
    for rel in ("wan-mini/transformer/diffusion_pytorch_model.safetensors", "anysplat-mini/model.safetensors",
                "wan-mini/video_model.json"):  # fmt: skip
        assert (out / rel).read_bytes() == (base / rel).read_bytes(), rel
    assert load_file(str(out / "wan-mini/transformer/diffusion_pytorch_model.safetensors"))["norm"].dtype == torch.float32


def test_pack_refuses_a_folder_without_its_weights(tmp_path, capsys):
    base = _base(tmp_path / "base")
    (tmp_path / "empty").mkdir()
    rc = _script().main(["--out", str(tmp_path / "c"), "--base", str(base), "--anysplat", str(tmp_path / "empty")])
    assert rc == 2 and "has no model.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "c" / "anysplat-mini").exists()


def test_pack_shards_the_reconstructor_below_the_shard_size(tmp_path, monkeypatch):
    """A device export in one fp32 file is shipped as fp16 shards of at most SHARD_SIZE (plus the header), which
    load back to the same fp16 tensors; its other files are copied."""
    from vist3a.models.checkpoint import iter_checkpoint, resolve_weights

    mod = _script()
    monkeypatch.setattr(mod, "SHARD_SIZE", 3000)
    base = _base(tmp_path / "base")
    run = tmp_path / "recon"
    run.mkdir()
    g = torch.Generator().manual_seed(0)
    state = {f"layer{i}.weight": torch.randn(700, generator=g) for i in range(6)}  # 1400 B each in fp16
    save_file(state, str(run / "model.safetensors"))
    (run / "vist3a_model.json").write_text('{"preset": "anysplat-mini"}')
    out = tmp_path / "cand"
    assert mod.main(["--out", str(out), "--base", str(base), "--anysplat", str(run)]) == 0
    folder = out / "anysplat-mini"
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) == 3 and not (folder / "model.safetensors").exists()  # two tensors a shard
    assert all(f.stat().st_size <= 3000 + 1024 for f in shards)
    got = {k: get() for k, get in iter_checkpoint(resolve_weights(folder))}
    assert set(got) == set(state)
    assert all(got[k].dtype == torch.float16 and torch.equal(got[k], v.half()) for k, v in state.items())
    assert (folder / "vist3a_model.json").read_text() == '{"preset": "anysplat-mini"}'
    # a sharded source (the shipped layout) packs again, to the same shards
    again = tmp_path / "again"
    assert mod.main(["--out", str(again), "--base", str(base), "--anysplat", str(folder)]) == 0
    assert [f.read_bytes() for f in sorted((again / "anysplat-mini").glob("model-*"))] == [f.read_bytes() for f in shards]
