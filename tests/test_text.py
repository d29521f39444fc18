"""Text encoders: padding, masks, zeroed padding rows, the embedding cache (memory and disk)."""

from __future__ import annotations

import pytest
import torch

from vist3a.errors import CheckpointError, InputError, MissingWeightsError
from vist3a.models.text import TextEncoder, minilm_l6, minilm_path, umt5_xxl


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return minilm_l6(device="cpu", max_length=16)


def test_minilm_is_the_packaged_pretrained_model(minilm: TextEncoder) -> None:
    # all-MiniLM-L6-v2: BERT, 6 layers, hidden 384, vocab 30522 (its config.json in the package)
    cfg = minilm.encoder.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == (6, 384, 30522)
    assert (minilm_path() / "model.safetensors").is_file()
    # pretrained, not random: mean-pooled sentence embeddings (the model's own pooling) put a paraphrase
    # far closer than an unrelated sentence, which random weights do not
    e = minilm.encode(["a photo of a cat", "a picture of a kitten", "the stock market fell sharply"], cache=False)
    pooled = (e.embeds * e.mask[..., None]).sum(1) / e.mask.sum(1, keepdim=True)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    close, far = float(pooled[0] @ pooled[1]), float(pooled[0] @ pooled[2])
    assert close > 0.5 and close > far + 0.3


def test_padding_mask_and_zero_rows_match_an_unpadded_run(minilm: TextEncoder) -> None:
    prompts = ["a red cube left of a green sphere", "cone"]
    out = minilm.encode(prompts, cache=False)
    assert out.embeds.shape == (2, 16, 384) and out.mask.shape == (2, 16)
    tok = minilm.tokenizer
    for i, p in enumerate(prompts):
        n = len(tok.tokenize(p)) + 2  # [CLS] ... [SEP]
        assert int(out.mask[i].sum()) == n
        assert torch.all(out.embeds[i, n:] == 0)  # Wan convention: exact zeros past the prompt
        ids = tok(p, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            ref = minilm.encoder(input_ids=ids).last_hidden_state[0]
        torch.testing.assert_close(out.embeds[i, :n], ref, atol=1e-5, rtol=1e-4)


def test_prompts_are_cleaned_like_wan(minilm: TextEncoder) -> None:
    a = minilm.encode("  a red\n cube &amp; a  sphere ", cache=False)
    b = minilm.encode("a red cube & a sphere", cache=False)
    assert torch.equal(a.embeds, b.embeds)


def test_truncation_to_max_length(minilm: TextEncoder) -> None:
    out = minilm.encode(" ".join(["word"] * 100), cache=False)
    assert out.embeds.shape == (1, 16, 384) and bool(out.mask.all())


def test_memory_cache_skips_the_encoder(minilm: TextEncoder) -> None:
    calls = []
    h = minilm.encoder.register_forward_hook(lambda m, i, o: calls.append(i))
    try:
        minilm.clear_cache()
        a = minilm.encode(["a blue cylinder", "a blue cylinder"])
        assert len(calls) == 1 and minilm.cached("a blue cylinder")
        b = minilm.encode("a blue cylinder")
        assert len(calls) == 1  # served from the cache
        assert torch.equal(a.embeds[0], b.embeds[0]) and torch.equal(a.embeds[1], b.embeds[0])
        minilm.encode("a blue cylinder", cache=False)
        assert len(calls) == 2
    finally:
        h.remove()


def test_disk_cache_round_trip_works_without_tokenizer(minilm: TextEncoder, tmp_path) -> None:
    minilm.clear_cache()
    ref = minilm.encode(["two cubes", "a sphere on a plane"])
    path = minilm.save_cache(tmp_path / "emb.safetensors")
    fresh = TextEncoder(minilm.encoder, tokenizer=None, max_length=16, source_hint="somewhere")
    assert fresh.load_cache(path) == 2
    got = fresh.encode(["a sphere on a plane", "two cubes"])
    assert torch.equal(got.embeds[0], ref.embeds[1]) and torch.equal(got.mask[1], ref.mask[0])
    with pytest.raises(MissingWeightsError, match="somewhere"):
        fresh.encode("never seen")
    other = TextEncoder(minilm.encoder, tokenizer=None, max_length=8)
    with pytest.raises(CheckpointError, match="max_length"):
        other.load_cache(path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError):
        fresh.load_cache(bad)
    with pytest.raises(InputError):
        fresh.load_cache(tmp_path / "missing.safetensors")


def test_bad_prompts(minilm: TextEncoder) -> None:
    with pytest.raises(InputError):
        minilm.encode([])
    with pytest.raises(InputError, match="strings"):
        minilm.encode(["ok", 3])  # type: ignore[list-item]


def test_umt5_tiny_and_meta() -> None:
    tiny = dict(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4, relative_attention_num_buckets=8)
    enc = umt5_xxl(device="cpu", config=tiny, max_length=8)
    assert enc.hidden_size == 16 and enc.tokenizer is None
    with pytest.raises(MissingWeightsError, match="Wan-AI/Wan2.1-T2V-1.3B-Diffusers"):
        enc.encode("hello")
    meta = umt5_xxl(device="meta")
    assert meta.hidden_size == 4096 and meta.device.type == "meta"
