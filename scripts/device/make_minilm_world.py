"""A carry-sized MiniLM for building the DiT latent cache on the device (64 MiB carry limit).

The cache embeds only procedural-world captions, which use a few hundred WordPiece tokens. This copy keeps
the first 104 rows of the vocabulary (so [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103 keep their
ids and the tokenizer's post-processor is unchanged) plus every token the captions of the given scenes use,
and drops the other rows of the word embedding: 45 MB fp16 → about 22 MB. WordPiece's greedy longest match
over a vocabulary that is a superset of the tokens it picked gives the same split, so the embeddings of these
captions equal the full model's; the script checks that on every caption before it writes anything.

    python scripts/device/make_minilm_world.py --src .minilm16 --out .minilm_world --scenes 4000 --seed 0
    VIST3A_MINILM=$PWD/.minilm_world vist3a world train-mini --stage dit --cache-scenes 3000 ...
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vist3a.train import HELD_OUT_OFFSET
from vist3a.train.mini_dit import scene_phrasings

KEEP_HEAD = 104  # [PAD] .. [MASK]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=".minilm16")
    ap.add_argument("--out", default=".minilm_world")
    ap.add_argument("--scenes", type=int, default=4000, help="training scenes whose captions must be covered")
    ap.add_argument("--eval-scenes", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=13)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--max-objects", type=int, default=4)
    args = ap.parse_args()
    from transformers import AutoModel, AutoTokenizer

    src, out = Path(args.src), Path(args.out)
    tok = AutoTokenizer.from_pretrained(src)
    caps = [""]
    for seed, n in ((args.seed, args.scenes), (args.seed + HELD_OUT_OFFSET, args.eval_scenes)):
        for i in range(n):
            caps += scene_phrasings(i, seed, args.frames, args.size, args.max_objects)
    used = sorted({t for c in caps for t in tok(c)["input_ids"]} - set(range(KEEP_HEAD)))
    old_ids = list(range(KEEP_HEAD)) + used
    inv = {v: k for k, v in tok.get_vocab().items()}
    print(f"{len(caps)} captions use {len(used)} tokens beyond the first {KEEP_HEAD}")

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sd = load_file(src / "model.safetensors")
    key = next(k for k in sd if k.endswith("word_embeddings.weight"))
    sd[key] = sd[key][old_ids].contiguous()
    save_file(sd, tmp / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text())
    cfg["vocab_size"] = len(old_ids)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    (tmp / "vocab.txt").write_text("".join(inv[i] + "\n" for i in old_ids))
    tj = json.loads((src / "tokenizer.json").read_text())
    tj["model"]["vocab"] = {inv[i]: n for n, i in enumerate(old_ids)}
    (tmp / "tokenizer.json").write_text(json.dumps(tj))
    for f in ("tokenizer_config.json", "special_tokens_map.json"):
        if (src / f).exists():
            shutil.copy(src / f, tmp / f)

    # the same tokens and the same embeddings as the full model, for every caption
    small_tok = AutoTokenizer.from_pretrained(tmp)
    remap = torch.full((len(inv),), -1, dtype=torch.long)  # full-vocabulary id → id in the cut copy
    remap[old_ids] = torch.arange(len(old_ids))
    full, small = AutoModel.from_pretrained(src).float().eval(), AutoModel.from_pretrained(tmp).float().eval()
    for k in range(0, len(caps), 256):
        batch = caps[k : k + 256]
        a, b = tok(batch, padding=True, return_tensors="pt"), small_tok(batch, padding=True, return_tensors="pt")
        if not torch.equal(remap[a["input_ids"]], b["input_ids"]):
            raise SystemExit(f"tokenization differs in captions {k}..{k + len(batch)}")
        with torch.no_grad():
            ea, eb = full(**a).last_hidden_state, small(**b).last_hidden_state
        if not torch.allclose(ea, eb, atol=1e-5):
            raise SystemExit(f"embeddings differ in captions {k}..{k + len(batch)}: {(ea - eb).abs().max():.2e}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"wrote {out}: {sum(f.stat().st_size for f in out.iterdir()) / 2**20:.1f} MiB; all {len(caps)} captions identical")


if __name__ == "__main__":
    main()
