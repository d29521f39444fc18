"""RealEstate10K: the official index map (real ids), context/target split, both protocols, skips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vist3a.data.re10k import RE10KDataset, load_re10k_index_map, read_sequence_list, split_context_targets
from vist3a.errors import FormatError

W, H = 64, 36  # 16:9 like the 640x360 frames


def w2c(i: int) -> list[list[float]]:
    m = np.eye(4)
    m[:3, 3] = [-0.2 * i, 0.0, 0.5]
    return m.tolist()


def make_sequence(root: Path, seq: str, n: int, missing: set[int] = frozenset()) -> None:
    """root/<seq>/annotations.json + root/<seq>/frames/<k>.png; frame k has grey level k."""
    (root / seq / "frames").mkdir(parents=True)
    annos = []
    for k in range(n):
        rel = f"{seq}/frames/{k:05d}.png"
        if k not in missing:
            Image.fromarray(np.full((H, W, 3), k, dtype=np.uint8)).save(root / rel)
        K = [[50.0, 0.0, 32.0], [0.0, 50.0, 18.0], [0.0, 0.0, 1.0]]
        annos.append({"idx": k, "filepath": rel, "intrinsics": K, "extrinsics": w2c(k)})
    (root / seq / "annotations.json").write_text(json.dumps(annos))


ENTRY = [37, 75, 25, 88, 12, 139, 50, 63, 126, 113, 0, 101]  # the stored (shuffled) order of a real entry


def test_split_official_and_default():
    ctx, tgt = split_context_targets(ENTRY, "official")
    assert ctx == ENTRY[:8] and tgt == [101, 0, 113, 126]  # positions 11, 10, 9, 8
    ctx_d, tgt_d = split_context_targets(ENTRY)
    assert ctx_d == sorted(ENTRY[:8]) and tgt_d == [0, 101, 113, 126]


def test_index_map_validation():
    with pytest.raises(FormatError, match="12 distinct"):
        load_re10k_index_map({"a": [0, 1, 2]})
    with pytest.raises(FormatError, match="12 distinct"):
        load_re10k_index_map({"a": [0] * 12})


def test_real_index_map(shared_dir):
    data = shared_dir / "reference" / "vist3a-data"
    m = load_re10k_index_map(data / "re10k_indexmap.json")
    assert len(m) == 1715
    assert m["000c3ab189999a83"] == ENTRY
    test_ids = read_sequence_list(data / "re10k_test.txt")
    assert len(test_ids) == 1719
    assert sorted(set(test_ids) - set(m)) == ["177ff3969577b8de", "474d403238a41315", "486970d685c0b746", "48b1808c546c7e87"]
    inside = 0
    for ids in m.values():
        s = sorted(ids)
        gaps = np.diff(s)
        assert s[0] == 0 and gaps.max() - gaps.min() <= 1  # evenly spaced from frame 0 (METHOD §4.3)
        ctx, tgt = split_context_targets(ids, "official")
        inside += all(min(ctx) <= t <= max(ctx) for t in tgt)
    assert inside == 704  # targets inside the context span in 704/1715 sequences (METHOD §4.3)


def test_dataset_with_real_ids_counts_skips(shared_dir, tmp_path):
    data = shared_dir / "reference" / "vist3a-data"
    m = load_re10k_index_map(data / "re10k_indexmap.json")
    root = tmp_path / "re10k"
    make_sequence(root, "000c3ab189999a83", 140)
    seq2 = "000db54a47bd43fe"
    make_sequence(root, seq2, max(m[seq2]) + 1, missing={m[seq2][3]})
    ds = RE10KDataset(root, data / "re10k_indexmap.json", sequences=data / "re10k_test.txt", size=16)
    assert [s for s, _, _ in ds.items] == ["000c3ab189999a83"]
    assert ds.skipped.counts == {"not in index map": 4, "missing": 1719 - 4 - 2, "missing frames": 1}
    s = ds[0]
    assert s["images"].shape == (12, 3, 16, 16) and s["num_context"] == 8
    assert s["frame_ids"].tolist() == sorted(ENTRY[:8]) + [0, 101, 113, 126]


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "re10k"
    make_sequence(root, "seqA", 24)
    make_sequence(root, "seqB", 5)  # index out of range
    (root / "seqC").mkdir()
    (root / "seqC" / "annotations.json").write_text("{not json")
    entry = [22, 2, 20, 4, 18, 6, 16, 8, 14, 10, 12, 0]
    return root, {"seqA": entry, "seqB": entry, "seqC": entry}


def test_default_protocol(small):
    root, imap = small
    ds = RE10KDataset(root, imap, size=16, feedforward_size=8)
    assert len(ds) == 1
    assert ds.skipped.counts == {"index out of range": 1, "unreadable": 1}
    s = ds[0]
    ids = [2, 4, 6, 8, 16, 18, 20, 22] + [0, 10, 12, 14]
    assert s["frame_ids"].tolist() == ids
    assert (s["images"][:, 0, 8, 8] * 255).round().tolist() == ids  # grey level = frame index
    cams = s["cameras"]
    assert (cams.width, cams.height) == (16, 16)
    want_c2w = torch.stack([torch.linalg.inv(torch.tensor(w2c(i))) for i in ids]).float()
    assert torch.allclose(cams.c2w, want_c2w, atol=1e-6)
    # K: 64x36 → cover 16x16 (×16/36 → 28x16) → crop x0 = 6
    s_ = 28 / 64
    assert cams.K[0, 0, 0].item() == pytest.approx(50 * s_, rel=1e-5)
    assert cams.K[0, 0, 2].item() == pytest.approx(32 * s_ - 6, rel=1e-5)
    assert s["feedforward_images"].shape == (12, 3, 8, 8)
    assert s["feedforward_cameras"].K[0, 0, 0].item() == pytest.approx(50 * s_ / 2, rel=1e-5)
    c2w_ds = RE10KDataset(root, imap, size=16, extrinsics="c2w")
    assert torch.allclose(c2w_ds[0]["cameras"].c2w[0], torch.tensor(w2c(2)).float())


def test_official_protocol(small):
    root, imap = small
    ds = RE10KDataset(root, imap, size=16, feedforward_size=8, protocol="official")
    s = ds[0]
    assert s["frame_ids"].tolist() == [22, 2, 20, 4, 18, 6, 16, 8] + [0, 12, 10, 14]
    assert s["images"].shape == (12, 3, 16, 16) and s["feedforward_images"].shape == (12, 3, 8, 8)
    # the swapped resize: 64x36 → 16 wide x 28 tall: fx scales by 16/64, fy by 28/36
    assert s["cameras"].K[0, 0, 0].item() == pytest.approx(50 * 16 / 64, rel=1e-5)
    assert s["cameras"].K[0, 1, 1].item() == pytest.approx(50 * 28 / 36, rel=1e-5)


def test_unreadable_image_raises_for_evaluation(small):
    root, imap = small
    (root / "seqA" / "frames" / "00010.png").write_bytes(b"broken")
    ds = RE10KDataset(root, imap, size=16)
    with pytest.raises(FormatError, match="00010.png"):
        ds[0]
    assert list(ds) == [] and ds.skipped.counts["unreadable"] == 2
