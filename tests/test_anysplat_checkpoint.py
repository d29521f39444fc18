"""Strict checkpoint loading: files, folders, shards, dtypes, mismatches, missing downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from anysplat_tiny import TINY
from vist3a import registry
from vist3a.errors import CheckpointError, MissingWeightsError
from vist3a.models.checkpoint import load_weights, resolve_weights


@pytest.fixture(scope="module")
def source() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = registry.build("anysplat-mini", **TINY)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    assert list(got) == list(sd)
    for k, v in sd.items():
        assert torch.equal(got[k].float(), v.float()), k


def test_folder_with_safetensors_loads_exactly(tmp_path: Path, source) -> None:
    save_file(source, str(tmp_path / "model.safetensors"))
    model = registry.build("anysplat-mini", weights=tmp_path, **TINY)
    _assert_same(model, source)
    assert not model.training


def test_pth_nested_state_dict_and_bf16_on_disk_are_cast_per_tensor(tmp_path: Path, source) -> None:
    # Official AnySplat stores (or runs) the aggregator in bf16: values load into our fp32 model.
    on_disk = {k: (v.bfloat16() if k.startswith("encoder.aggregator.") else v) for k, v in source.items()}
    torch.save({"state_dict": on_disk, "epoch": 3}, tmp_path / "ckpt.pth")
    model = registry.build("anysplat-mini", weights=tmp_path / "ckpt.pth", **TINY)
    sd = model.state_dict()
    assert {v.dtype for v in sd.values()} == {torch.float32}
    key = "encoder.aggregator.frame_blocks.0.attn.qkv.weight"
    assert torch.equal(sd[key], source[key].bfloat16().float())
    # ... and into a bf16 aggregator with fp32 heads (official runtime dtypes).
    model = registry.build(
        "anysplat-mini", weights=tmp_path / "ckpt.pth", aggregator_dtype=torch.bfloat16, **TINY
    )
    assert model.state_dict()[key].dtype == torch.bfloat16
    assert model.state_dict()["encoder.camera_head.embed_pose.weight"].dtype == torch.float32


def test_sharded_safetensors_index(tmp_path: Path, source) -> None:
    keys = list(source)
    half = len(keys) // 2
    shards = {"a.safetensors": keys[:half], "b.safetensors": keys[half:]}
    for name, ks in shards.items():
        save_file({k: source[k] for k in ks}, str(tmp_path / name))
    index = {"weight_map": {k: name for name, ks in shards.items() for k in ks}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    _assert_same(registry.build("anysplat-mini", weights=tmp_path, **TINY), source)


def test_save_pretrained_shards_and_switches_layout(tmp_path: Path, source) -> None:
    """Shards of at most max_shard_size (the shipped layout) load back exactly; a later save in the other layout
    leaves no file of the first behind (the loader prefers model.safetensors, so a stale one would win)."""
    from vist3a.models.anysplat import from_pretrained
    from vist3a.models.checkpoint import has_weights

    model = registry.build("anysplat-mini", weights=source, **TINY)
    limit = 64 * 1024
    total = sum(v.numel() * v.element_size() for v in source.values())
    assert total > 4 * limit  # the tiny model needs several shards at this size
    folder = model.save_pretrained(tmp_path / "m", preset="anysplat-mini", max_shard_size=limit)
    shards = sorted(folder.glob("model-*.safetensors"))
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(shards) >= 4 and not (folder / "model.safetensors").exists()
    biggest = max(v.numel() * v.element_size() for v in source.values())
    assert all(f.stat().st_size <= max(limit, biggest) + 16 * 1024 for f in shards)  # + the safetensors header
    assert set(index["weight_map"]) == set(source) and sorted(set(index["weight_map"].values())) == [f.name for f in shards]
    assert index["metadata"]["total_size"] == total
    _assert_same(from_pretrained(folder, **TINY), source)
    model.save_pretrained(folder, preset="anysplat-mini")  # back to one file
    assert sorted(f.name for f in folder.iterdir()) == ["model.safetensors", "vist3a_model.json"]
    _assert_same(from_pretrained(folder, **TINY), source)
    assert has_weights(folder) and not has_weights(tmp_path)


def test_mismatches_are_reported_by_key(source) -> None:
    model = registry.build("anysplat-mini", **TINY)
    missing = dict(source)
    del missing["encoder.camera_head.empty_pose_tokens"]
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): encoder\.camera_head\.empty_pose_tokens"):
        load_weights(model, missing)
    extra = dict(source, **{"encoder.distill_aggregator.x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): encoder\.distill_aggregator\.x"):
        load_weights(model, extra)
    wrong = dict(source, **{"encoder.gaussian_param_head.scratch.output_conv2.2.bias": torch.zeros(83)})
    with pytest.raises(CheckpointError, match=r"output_conv2\.2\.bias \[83\] vs model \[84\]"):
        load_weights(model, wrong)
    # Non-strict loading reports instead of raising; ignored prefixes are skipped.
    report = load_weights(model, extra, strict=False, ignore_prefixes=("encoder.distill",))
    assert report["ignored"] == ["encoder.distill_aggregator.x"] and not report["missing"]


def test_missing_weights_give_one_actionable_line(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="no such file"):
        resolve_weights(tmp_path / "nope.safetensors")
    with pytest.raises(MissingWeightsError, match="no weights file in"):
        resolve_weights(tmp_path)
    # A Hugging Face id that is not in the local cache (no network access attempted).
    with pytest.raises(MissingWeightsError) as info:
        resolve_weights("vist3a-test/not-cached-model", allow_download=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert "https://huggingface.co/vist3a-test/not-cached-model/resolve/main/model.safetensors" in msg


def test_corrupt_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a safetensors file")
    model = registry.build("anysplat-mini", **TINY)
    with pytest.raises(CheckpointError, match="cannot read safetensors"):
        load_weights(model, bad)


def test_vggt_checkpoint_with_track_head_loads_without_it() -> None:
    kw = dict(TINY, pos_embed_img_size=56)
    kw.pop("intermediate_layer_idx")
    model = registry.build("vggt-1b", intermediate_layer_idx=(0, 0, 0, 0), **kw)
    sd = dict(model.state_dict())
    sd["track_head.tracker.query_ref_token"] = torch.zeros(1, 2, 384)  # official VGGT-1B has a track head
    loaded = registry.build("vggt-1b", weights=sd, intermediate_layer_idx=(0, 0, 0, 0), **kw)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_sharded_save_cut_off_midway_loads_nothing_rather_than_a_mix(tmp_path: Path, monkeypatch) -> None:
    """Re-saving shards over shards: if the save dies after the first shard, the old index is already gone, so the
    folder refuses to load instead of pairing a new shard with an old one."""
    import safetensors.torch

    from vist3a.models.checkpoint import save_state_dict

    old = {f"w{i}": torch.full((256,), float(i)) for i in range(4)}  # 1 KiB each: two tensors a 2 KiB shard
    save_state_dict(old, tmp_path, max_shard_size=2048)
    assert len(list(tmp_path.glob("model-*.safetensors"))) == 2
    real, calls = safetensors.torch.save_file, []

    def dies_on_second(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 2:
            raise OSError("disk full")
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", dies_on_second)
    with pytest.raises(OSError, match="disk full"):
        save_state_dict({k: v + 10 for k, v in old.items()}, tmp_path, max_shard_size=2048)
    assert not (tmp_path / "model.safetensors.index.json").exists()
    with pytest.raises(MissingWeightsError, match="no weights file"):
        resolve_weights(tmp_path)
