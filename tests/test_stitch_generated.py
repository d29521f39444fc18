"""Generated sets (vist3a.stitching.generated): the DiT's latents + their decode, written, read back, resumed."""

from __future__ import annotations

import json

import pytest
import torch

from vist3a.cli import main as cli_main
from vist3a.errors import CheckpointError, InputError
from vist3a.pipelines.loading import tiny_pipeline
from vist3a.stitching.generated import INDEX, GeneratedLatents, read_index, write_generated_set

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0).with_settings(steps=2)


def test_video_latents_are_the_latents_generation_decodes(pipe):
    """video_latents(prompt, seed) is the raw latent the full generation returns (same text, noise and sampler)."""
    raw = pipe.video_latents("a red cube", seed=5)
    res = pipe("a red cube", seed=5, progress=False)
    assert raw.shape == (1, *res.latents.shape) == (1, 16, 2, 8, 8)
    torch.testing.assert_close(raw[0], res.latents, rtol=0, atol=0)
    assert not torch.equal(pipe.video_latents("a red cube", seed=6), raw)  # the seed is used


def test_batched_video_latents_match_each_alone(pipe, tmp_path):
    """A batch of prompts gives each sample its own seed's latent (as alone, up to float rounding), and a batched
    generated set stores the same clips as one written one clip at a time."""
    both = pipe.video_latents(["a red cube", "a blue sphere"], seed=[5, 9])
    assert both.shape == (2, 16, 2, 8, 8)
    torch.testing.assert_close(both[0], pipe.video_latents("a red cube", seed=5)[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both[1], pipe.video_latents("a blue sphere", seed=9)[0], rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="2 prompts and 1 seeds"):
        pipe.video_latents(["a red cube", "a blue sphere"], seed=[5])
    prompts, seeds = ["a red cube", "a blue sphere", "a green cone"], [3, 4, 5]
    one = GeneratedLatents(write_generated_set(pipe, prompts, seeds, tmp_path / "one", progress=False))
    two = GeneratedLatents(write_generated_set(pipe, prompts, seeds, tmp_path / "two", progress=False, batch_size=2))
    assert two.prompts == prompts
    for i in range(3):
        torch.testing.assert_close(two[i]["latents"], one[i]["latents"], rtol=2e-3, atol=2e-3)
        assert (two[i]["images"] - one[i]["images"]).abs().max() <= 1.5 / 255
    with pytest.raises(InputError, match="batch_size must be >= 1"):
        write_generated_set(pipe, prompts, seeds, tmp_path / "bad", progress=False, batch_size=0)
    with pytest.raises(InputError, match=r"prompt_embeds must be \[1, L, D\]"):
        pipe("x", prompt_embeds=torch.zeros(2, 4, 8), negative_embeds=torch.zeros(1, 4, 8), progress=False)


def test_generated_set_round_trip_resume_and_errors(pipe, tmp_path):
    """Each stored clip is (the pipeline's latent, its VAE decode as uint8); a rerun keeps written clips and refuses
    other settings; the reader checks frame count, size, missing keys and corrupt files in one line each."""
    out = write_generated_set(pipe, ["a red cube", "a blue sphere"], [3, 4], tmp_path / "set", progress=False)
    ds = GeneratedLatents(out, frames=5, size=64)
    assert len(ds) == 2 and ds.prompts == ["a red cube", "a blue sphere"]
    item = ds[1]
    want = pipe.video_latents("a blue sphere", seed=4)[0]
    torch.testing.assert_close(item["latents"], want, rtol=2e-3, atol=2e-3)  # stored in fp16
    with torch.no_grad():
        dec = ((pipe.video.decode(item["latents"][None])[0].float().permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
    assert item["images"].shape == (5, 3, 64, 64) and item["images"].dtype == torch.float32
    assert (item["images"] - dec).abs().max() < 0.02  # uint8 rounding + the fp16 latent

    first = out / read_index(out)["clips"][0]["file"]
    stamp = first.stat().st_mtime_ns
    (out / read_index(out)["clips"][1]["file"]).unlink()
    assert len(GeneratedLatents(out)) == 1  # a clip not yet written is not served
    write_generated_set(pipe, ["a red cube", "a blue sphere"], [3, 4], out, progress=False)
    assert first.stat().st_mtime_ns == stamp and len(GeneratedLatents(out)) == 2
    write_generated_set(pipe, ["a red cube", "a blue sphere", "a cone"], [3, 4, 5], out, progress=False)  # extended
    assert len(GeneratedLatents(out)) == 3 and first.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="clip_000001.safetensors holds 'a blue sphere' seed 4, this run asks for "
                                         "'a red cube' seed 4"):  # fmt: skip
        write_generated_set(pipe, ["a red cube", "a red cube"], [3, 4], out, progress=False)
    with pytest.raises(InputError, match="generated with other settings"):
        write_generated_set(pipe.with_settings(steps=3), ["a red cube"], [3], out, progress=False)

    with pytest.raises(InputError, match="have 5 frames, the training asks for 9"):
        GeneratedLatents(out, frames=9)
    with pytest.raises(InputError, match="are 64x64, the training asks for 32x32"):
        GeneratedLatents(out, size=32)
    with pytest.raises(InputError, match="not a generated set"):
        GeneratedLatents(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / INDEX).write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="not a vist3a-generated-latents-v1 index"):
        GeneratedLatents(tmp_path / "bad")
    first.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt clip"):
        GeneratedLatents(out)[0]


def test_cli_generate_set_refuses_the_held_out_world(tmp_path, capsys):
    assert cli_main(["stitch", "generate-set", "--world", "2", "--world-seed", "7919", "--out", str(tmp_path)]) != 0
    assert "held-out evaluation set" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert cli_main(["stitch", "generate-set", "--world", "1", "--out", str(tmp_path / "afile")]) != 0
    assert "is a file; the set is a folder" in capsys.readouterr().err
    assert cli_main(["stitch", "generate-set", "--world", "1", "--steps", "0", "--out", str(tmp_path / "s")]) != 0
    assert "--steps must be >= 1, got 0" in capsys.readouterr().err
    assert cli_main(["stitch", "generate-set", "--world", "1", "--batch-size", "0", "--out", str(tmp_path / "s")]) != 0
    assert "--batch-size and --per-caption must be >= 1, got 0 and 1" in capsys.readouterr().err


def test_stitch_dataset_kind_generated(pipe, tmp_path):
    """--dataset generated:DIR builds the set's reader at the training's frames and size (one error otherwise)."""
    from vist3a.commands.stitch import make_dataset

    out = write_generated_set(pipe, ["a red cube"], [0], tmp_path / "set", progress=False)
    ds = make_dataset([f"generated:{out}"], 5, 5, 64)
    assert isinstance(ds, GeneratedLatents) and len(ds) == 1 and set(ds[0]) == {"images", "latents"}
    with pytest.raises(InputError, match="pass --frames 5"):
        make_dataset([f"generated:{out}"], 13, 13, 64)


def test_cli_generate_set_from_a_text_cache_with_several_clips_per_caption(tmp_path, capsys):
    """--write-text-cache encodes the set's captions with MiniLM; --text-cache then generates without it, K clips
    per caption from seeds SEED + j, the same latents as the live encoder's up to the cache's fp16; captions that
    are not in the cache are one line, before any clip."""
    from vist3a.eval.text_to_3d import world_scenes
    from vist3a.pipelines import load_pipeline

    cache, out = tmp_path / "cache.safetensors", tmp_path / "set"
    base = ["stitch", "generate-set", "--world", "1", "--world-seed", "3", "--device", "cpu", "--no-progress"]
    assert cli_main([*base, "--out", str(out), "--write-text-cache", str(cache)]) == 0 and cache.is_file()
    assert not out.exists()  # writing the cache generates nothing
    assert cli_main([*base, "--out", str(out), "--text-cache", str(cache), "--per-caption", "2", "--seed", "10",
                     "--steps", "1", "--batch-size", "2"]) == 0  # fmt: skip
    doc = read_index(out)
    caption = world_scenes(1, 3, 0, style="short")[0].prompt
    assert [(c["prompt"], c["seed"]) for c in doc["clips"]] == [(caption, 10), (caption, 11)]
    live = load_pipeline("mini", device="cpu").with_settings(steps=1).video_latents(caption, seed=11)[0]
    got = GeneratedLatents(out)[1]["latents"]
    assert not torch.allclose(GeneratedLatents(out)[0]["latents"], got)  # its own seed
    torch.testing.assert_close(got, live, rtol=0.02, atol=0.02)
    assert (got - live).abs().mean() < 2e-3
    argv = ["stitch", "generate-set", "--world", "2", "--device", "cpu", "--out", str(tmp_path / "s2")]
    assert cli_main([*argv, "--text-cache", str(cache)]) != 0
    assert "1 of the run's texts are not in --text-cache" in capsys.readouterr().err
    assert not (tmp_path / "s2").exists()


def test_cli_train_refuses_mixed_or_several_frame_counts_for_a_generated_set(pipe, tmp_path, capsys):
    """A generated set trains alone and at one frame count: both mistakes are one line, before any model loads."""
    from vist3a.commands.stitch import make_dataset

    out = write_generated_set(pipe, ["a red cube"], [0], tmp_path / "set", progress=False)
    (tmp_path / "frames").mkdir()
    with pytest.raises(InputError, match="cannot be combined with other --dataset sources"):
        make_dataset([f"generated:{out}", f"frames:{tmp_path / 'frames'}"], 5, 5, 64)
    argv = ["stitch", "train", "--video", "wan-mini", "--recon", "anysplat-mini", "--dataset", f"generated:{out}",
            "--frames", "1,5", "--out", str(tmp_path / "run"), "--steps", "1"]  # fmt: skip
    assert cli_main(argv) == 1
    assert "trains at the set's own frame count" in capsys.readouterr().err


def test_a_failed_clip_leaves_no_partial_file(pipe, tmp_path, monkeypatch):
    """A generation that fails mid-set keeps the clips written before it and leaves no temporary file behind."""
    decode, calls = pipe.video.decode, []

    def failing(latent):  # noqa: ANN001, ANN202
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return decode(latent)

    monkeypatch.setattr(pipe.video, "decode", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        write_generated_set(pipe, ["a red cube", "a blue sphere"], [0, 1], tmp_path / "set", progress=False)
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["clip_000000.safetensors", INDEX]
