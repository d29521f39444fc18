"""Scene files: INRIA .ply, antimatter15 .splat, Niantic .spz; load_scene / save_scene."""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np
import plyfile
import pytest
import torch

from repo_scripts import load_script
from vist3a.errors import FormatError, InputError
from vist3a.gaussians.cameras import quat_to_matrix
from vist3a.gaussians.formats import (
    example_scene_path,
    load_scene,
    save_scene,
    scene_format,
)
from vist3a.gaussians.gaussians import SH_C0, Gaussians, eval_sh

REPO = Path(__file__).resolve().parents[1]
FORMATS = ["ply", "splat", "spz"]

# Quantisation of each format (max abs error of a round trip), derived from its encoding.
SPZ_POS = 0.5 / 4096 + 1e-6  # 12 fractional bits
SPZ_LOG_SCALE = 0.5 / 16 + 1e-6  # u8 = (log s + 10) * 16
SPZ_DC = 0.5 / (0.15 * 255) + 1e-6  # u8 = dc * 0.15 * 255 + 127.5
U8 = 0.5 / 255 + 1e-6  # alpha (both), rgb (.splat)
SPZ_SH1 = (0.5 + 4) / 128 + 1e-6  # round to 1/128, then to the nearest bucket of 8 (5 bits)
SPZ_SH_REST = (0.5 + 8) / 128 + 1e-6  # buckets of 16 (4 bits)


def make_scene(n: int = 40, degree: int = 3, seed: int = 0) -> Gaussians:
    """Random valid scene inside every format's range; means on a grid so splats can be matched."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(1000, generator=g)[:n]
    grid = torch.stack([idx % 10, (idx // 10) % 10, idx // 100], -1).float() * 0.2 - 0.9
    means = grid + (torch.rand(n, 3, generator=g) - 0.5) * 0.02
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    scales = torch.exp(torch.rand(n, 3, generator=g) * 4 - 5)
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    k = (degree + 1) ** 2
    sh = (torch.rand(n, k, 3, generator=g) * 2 - 1) * 0.9
    sh[:, 0] = (torch.rand(n, 3, generator=g) - 0.5) / SH_C0 * 0.98  # colour in (0.01, 0.99)
    return Gaussians(means, quats, scales, opacities, sh)


def match(a: Gaussians, b: Gaussians) -> Gaussians:
    """Reorder ``b`` so its i-th splat is the one nearest ``a``'s i-th mean (formats may reorder)."""
    assert len(a) == len(b)
    order = torch.cdist(a.means, b.means).argmin(1)
    assert len(set(order.tolist())) == len(a)
    return b[order]


def rot_err(q0: torch.Tensor, q1: torch.Tensor) -> float:
    return float((quat_to_matrix(q0) - quat_to_matrix(q1)).abs().max())


def assert_close_scene(orig: Gaussians, got: Gaussians, fmt: str, degree: int | None = None) -> None:
    got = match(orig, got)
    if fmt == "ply":
        tol = dict(pos=1e-6, log_scale=1e-5, opa=1e-6, dc=1e-6, rest=(1e-6, 1e-6), rot=1e-5)
    elif fmt == "splat":
        tol = dict(pos=1e-6, log_scale=1e-5, opa=U8, dc=U8 / SH_C0, rest=None, rot=2.5 / 128)
    else:
        tol = dict(pos=SPZ_POS, log_scale=SPZ_LOG_SCALE, opa=U8, dc=SPZ_DC, rest=(SPZ_SH1, SPZ_SH_REST), rot=4e-3)
    assert (got.means - orig.means).abs().max() <= tol["pos"]
    assert (got.scales.log() - orig.scales.log()).abs().max() <= tol["log_scale"]
    assert (got.opacities - orig.opacities).abs().max() <= tol["opa"]
    assert (got.sh[:, 0] - orig.sh[:, 0]).abs().max() <= tol["dc"]
    assert rot_err(orig.quats, got.quats) <= tol["rot"]
    degree = orig.sh_degree if degree is None else degree
    assert got.sh_degree == (0 if fmt == "splat" else degree)
    if tol["rest"] and degree:
        assert (got.sh[:, 1:4] - orig.sh[:, 1:4]).abs().max() <= tol["rest"][0]
        k = (degree + 1) ** 2
        if k > 4:
            assert (got.sh[:, 4:k] - orig.sh[:, 4:k]).abs().max() <= tol["rest"][1]


def no_leftovers(folder: Path, allowed: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} <= allowed, list(folder.iterdir())


# --------------------------------------------------------------------------------------- .ply


def ply_header(path: Path) -> list[str]:
    data = path.read_bytes()
    return data[: data.index(b"end_header\n")].decode("ascii").splitlines()


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_ply_header_has_exactly_the_inria_properties(tmp_path: Path, degree: int) -> None:
    path = tmp_path / "s.ply"
    save_scene(make_scene(5, degree), path)
    header = ply_header(path)
    assert header[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 5"]
    props = [line for line in header if line.startswith("property")]
    n_rest = 3 * ((degree + 1) ** 2 - 1)
    expected = (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(n_rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )
    assert props == [f"property float {name}" for name in expected]
    assert [line for line in header if line.startswith("element")] == ["element vertex 5"]


def test_ply_stores_logit_opacity_log_scale_wxyz_and_channel_major_rest(tmp_path: Path) -> None:
    degree, k = 2, 9
    sh = torch.zeros(2, k, 3)
    for j in range(k):
        for c in range(3):
            sh[:, j, c] = 0.01 * j + 0.1 * c  # coefficient j of channel c
    half = math.sqrt(0.5)
    g = Gaussians(
        means=torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]]),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0], [half, 0.0, 0.0, half]]),
        scales=torch.tensor([[1.0, 1.0, 1.0], [math.e, 0.5, 2.0]]),
        opacities=torch.tensor([0.5, 0.9]),
        sh=sh,
    )
    path = tmp_path / "s.ply"
    save_scene(g, path)
    v = plyfile.PlyData.read(str(path))["vertex"].data
    assert v["opacity"][0] == 0.0  # logit(0.5)
    assert v["opacity"][1] == pytest.approx(math.log(9.0), abs=1e-5)  # logit(0.9)
    assert [v[f"scale_{i}"][0] for i in range(3)] == [0.0, 0.0, 0.0]  # log(1)
    assert [v[f"scale_{i}"][1] for i in range(3)] == pytest.approx([1.0, math.log(0.5), math.log(2.0)], abs=1e-6)
    assert [v[f"rot_{i}"][1] for i in range(4)] == pytest.approx([half, 0, 0, half])  # w first
    assert all(v[n][0] == 0.0 for n in ("nx", "ny", "nz"))
    for i in range(3 * (k - 1)):  # channel-major: all R of bands 1.., then G, then B
        channel, coeff = divmod(i, k - 1)
        assert v[f"f_rest_{i}"][0] == pytest.approx(0.01 * (coeff + 1) + 0.1 * channel)
    assert v["f_dc_1"][0] == pytest.approx(0.1)
    assert load_scene(path).sh_degree == degree


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_ply_round_trip_is_lossless_within_fp32(tmp_path: Path, degree: int) -> None:
    g = make_scene(30, degree)
    save_scene(g, tmp_path / "s.ply")
    got = load_scene(tmp_path / "s.ply")
    assert_close_scene(g, got, "ply")
    assert torch.equal(got.means, g.means) and torch.equal(got.sh, g.sh)


def write_raw_ply(path: Path, columns: dict[str, np.ndarray], dtype: str = "<f4") -> None:
    n = len(next(iter(columns.values())))
    rec = np.empty(n, dtype=[(k, dtype if not isinstance(v, tuple) else v[1]) for k, v in columns.items()])
    for k, v in columns.items():
        rec[k] = v[0] if isinstance(v, tuple) else v
    plyfile.PlyData([plyfile.PlyElement.describe(rec, "vertex")], byte_order="<").write(str(path))


def raw_columns(n: int = 3, n_rest: int = 0) -> dict[str, np.ndarray]:
    cols = {c: np.arange(n, dtype=np.float64) + i for i, c in enumerate("xyz")}
    cols |= {f"f_dc_{i}": np.zeros(n) for i in range(3)}
    cols |= {f"f_rest_{i}": np.zeros(n) for i in range(n_rest)}
    cols |= {"opacity": np.zeros(n)} | {f"scale_{i}": np.zeros(n) for i in range(3)}
    cols |= {"rot_0": np.full(n, 2.0), "rot_1": np.zeros(n), "rot_2": np.zeros(n), "rot_3": np.zeros(n)}
    return cols


def test_ply_reader_accepts_doubles_without_normals_and_renormalises(tmp_path: Path) -> None:
    path = tmp_path / "d.ply"
    write_raw_ply(path, raw_columns(3, n_rest=9), dtype="<f8")
    g = load_scene(path)
    assert g.sh_degree == 1 and len(g) == 3
    assert torch.allclose(g.quats, torch.tensor([1.0, 0, 0, 0]).expand(3, 4))
    assert torch.allclose(g.opacities, torch.full((3,), 0.5))


def test_ply_reader_rejects_wrong_layouts(tmp_path: Path) -> None:
    cols = raw_columns()
    del cols["opacity"]
    write_raw_ply(tmp_path / "missing.ply", cols)
    with pytest.raises(FormatError, match="missing vertex properties.*opacity"):
        load_scene(tmp_path / "missing.ply")

    cols = raw_columns()
    cols["scale_1"] = (np.zeros(3), "u1")
    write_raw_ply(tmp_path / "uchar.ply", cols)
    with pytest.raises(FormatError, match="'scale_1' must be float"):
        load_scene(tmp_path / "uchar.ply")

    write_raw_ply(tmp_path / "rest7.ply", raw_columns(n_rest=7))
    with pytest.raises(FormatError, match="7 f_rest"):
        load_scene(tmp_path / "rest7.ply")

    good = tmp_path / "good.ply"
    save_scene(make_scene(10, 1), good)
    data = good.read_bytes()
    (tmp_path / "trunc.ply").write_bytes(data[:-7])
    with pytest.raises(FormatError, match="trunc.ply.*(end-of-file|early)"):
        load_scene(tmp_path / "trunc.ply")
    (tmp_path / "head.ply").write_bytes(data[:30])
    with pytest.raises(FormatError, match="not a readable .ply"):
        load_scene(tmp_path / "head.ply")
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(FormatError):
        load_scene(tmp_path / "junk.ply")


def test_ply_reader_skips_nan_rows_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cols = raw_columns(4)
    cols["x"][1] = np.nan
    cols["rot_0"][2] = 0.0  # zero quaternion
    write_raw_ply(tmp_path / "nan.ply", cols)
    g = load_scene(tmp_path / "nan.ply")
    assert len(g) == 2 and torch.isfinite(g.means).all()
    assert "skipped 2 splats" in caplog.text


# --------------------------------------------------------------------------------------- .splat


def test_splat_record_layout(tmp_path: Path) -> None:
    g = Gaussians.from_colors(
        means=torch.tensor([[1.0, -2.0, 3.5]]),
        colors=torch.tensor([[1.0, 0.0, 0.5]]),
        scales=torch.tensor([[0.5, 2.0, 0.25]]),
        opacities=torch.tensor([1.0]),
    )
    path = tmp_path / "s.splat"
    save_scene(g, path)
    data = path.read_bytes()
    assert len(data) == 32
    assert struct.unpack("<3f", data[0:12]) == (1.0, -2.0, 3.5)
    assert struct.unpack("<3f", data[12:24]) == (0.5, 2.0, 0.25)  # linear scales
    assert tuple(data[24:28]) == (255, 0, 128, 255)  # rgb from DC, alpha = opacity
    assert tuple(data[28:32]) == (255, 128, 128, 128)  # identity wxyz * 128 + 128, clipped


def test_splat_sorted_by_volume_times_opacity(tmp_path: Path) -> None:
    g = make_scene(50, 0)
    save_scene(g, tmp_path / "s.splat")
    got = load_scene(tmp_path / "s.splat")
    score = got.scales.double().prod(-1) * got.opacities.double()
    assert (score[:-1] >= score[1:] * (1 - 2e-2)).all()  # non-increasing up to u8 alpha rounding
    assert_close_scene(g, got, "splat")


def test_splat_size_must_be_a_multiple_of_32(tmp_path: Path) -> None:
    (tmp_path / "bad.splat").write_bytes(bytes(70))
    with pytest.raises(FormatError, match="not a multiple of 32"):
        load_scene(tmp_path / "bad.splat")


# --------------------------------------------------------------------------------------- .spz


def spz_stream(version: int, n: int, degree: int, blocks: list[bytes], frac: int = 12, flags: int = 0) -> bytes:
    return struct.pack("<IIIBBBB", 0x5053474E, version, n, degree, frac, flags, 0) + b"".join(blocks)


def int24(v: int) -> bytes:
    return (v & 0xFFFFFF).to_bytes(3, "little")


def test_spz_hand_built_v2_file(tmp_path: Path) -> None:
    """Two points written by hand in spz's RUB axes, read back in RDF (y, z flipped)."""
    pos = int24(4096) + int24(8192) + int24(-2048) + int24(-1) + int24(0) + int24(6144)
    alphas = bytes([128, 255])
    colors = bytes([166, 128, 90, 128, 128, 128])
    scales = bytes([160, 176, 144, 160, 160, 160])  # log s = 0, 1, -1
    z = round(math.sqrt(0.5) * 127.5 + 127.5)  # v2: x,y,z as q*127.5+127.5, w >= 0 implied
    rots = bytes([128, 128, z, 128, 128, 128])  # 90 degrees about z (RUB); ~identity
    sh = bytes([192, 128, 128, 64, 128, 128, 160, 128, 128]) + bytes([128] * 9)  # degree 1, colour fastest
    path = tmp_path / "hand.spz"
    path.write_bytes(gzip.compress(spz_stream(2, 2, 1, [pos, alphas, colors, scales, rots, sh])))
    g = load_scene(path)
    assert len(g) == 2 and g.sh_degree == 1
    assert torch.allclose(g.means[0], torch.tensor([1.0, -2.0, 0.5]))  # RUB (1, 2, -0.5) -> RDF
    assert torch.allclose(g.means[1], torch.tensor([-1 / 4096, 0.0, -1.5]))
    assert g.opacities.tolist() == pytest.approx([128 / 255, 1.0])
    dc = (torch.tensor([166.0, 128.0, 90.0]) / 255 - 0.5) / 0.15
    assert torch.allclose(g.sh[0, 0], dc, atol=1e-6)
    assert torch.allclose(g.scales[0], torch.tensor([1.0, math.e, 1 / math.e]), rtol=1e-5)
    # A rotation by +90 deg about z in RUB is a rotation by -90 deg about z in RDF: F Rz(a) F = Rz(-a).
    expect = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert (quat_to_matrix(g.quats[0]) - expect).abs().max() < 0.02  # v2 steps of 1/127.5
    # SH band 1 (gsplat basis: -C1*y, C1*z, -C1*x): the y- and z-odd coefficients flip sign.
    assert g.sh[0, 1].tolist() == pytest.approx([-0.5, 0.0, 0.0])
    assert g.sh[0, 2].tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert g.sh[0, 3].tolist() == pytest.approx([0.25, 0.0, 0.0])


def test_spz_hand_built_v3_smallest_three() -> None:
    """v3 rotation: 2-bit index of the largest, then sign bit + 9-bit magnitude per other component."""
    from vist3a.gaussians.formats.spz import decode

    mag = math.floor(511 * 0.5 / math.sqrt(0.5) + 0.5)  # |0.5| / sqrt(1/2) on 9 bits
    comp = 0  # largest = x (index 0); y, z, w = +0.5 each, then negate y
    for neg in (1, 0, 0):
        comp = (comp << 10) | (neg << 9) | mag
    rot = comp.to_bytes(4, "little")
    stream = spz_stream(3, 1, 0, [int24(0) * 3, bytes([255]), bytes([128] * 3), bytes([160] * 3), rot])
    g = decode(stream)
    # spz xyzw (0.5, -0.5, 0.5, 0.5) in RUB -> ours wxyz (0.5, 0.5, 0.5, -0.5) after the y/z flip
    assert g.quats[0].tolist() == pytest.approx([0.5, 0.5, 0.5, -0.5], abs=2e-3)


def test_spz_writes_v3_header_rub_positions_and_smallest_three(tmp_path: Path) -> None:
    g = Gaussians.from_colors(
        torch.tensor([[0.5, 1.0, -2.0]]), torch.tensor([[0.5, 0.5, 0.5]]), torch.ones(1, 3), torch.tensor([0.5])
    )
    path = tmp_path / "s.spz"
    save_scene(g, path)
    raw = gzip.decompress(path.read_bytes())
    magic, version, n, degree, frac, flags, _ = struct.unpack_from("<IIIBBBB", raw)
    assert (magic, version, n, degree, frac, flags) == (0x5053474E, 3, 1, 0, 12, 0)
    assert raw[16:25] == int24(2048) + int24(-4096) + int24(8192)  # y, z flipped
    assert raw[25] == 128 and raw[26:29] == bytes([128] * 3) and raw[29:32] == bytes([160] * 3)
    assert raw[32:36] == (3 << 30).to_bytes(4, "little")  # identity: largest is w (index 3), rest 0
    assert len(raw) == 36

    g = g.with_sh_degree(1)
    g.sh[0, 1:, 0] = torch.tensor([0.5, 0.25, 0.3])  # red of the y-, z- and x-odd coefficients
    save_scene(g, path)
    raw = gzip.decompress(path.read_bytes())
    assert raw[12] == 1 and len(raw) == 36 + 9
    # -0.5 -> 64; -0.25 -> 96; +0.3 -> 128 + 38 = 166 -> nearest multiple of 8 (5 bits): 168
    assert raw[36:45] == bytes([64, 128, 128, 96, 128, 128, 168, 128, 128])


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_spz_round_trip_within_quantisation(tmp_path: Path, degree: int) -> None:
    g = make_scene(40, degree, seed=degree)
    save_scene(g, tmp_path / "s.spz")
    got = load_scene(tmp_path / "s.spz")
    assert_close_scene(g, got, "spz")


def test_spz_preserves_view_dependent_colour(tmp_path: Path) -> None:
    """The colour seen from a world direction survives the RDF -> RUB -> RDF trip (SH flip signs right)."""
    g = make_scene(20, 3)
    save_scene(g, tmp_path / "s.spz")
    got = match(g, load_scene(tmp_path / "s.spz"))
    dirs = torch.nn.functional.normalize(torch.randn(20, 3, generator=torch.Generator().manual_seed(1)), dim=-1)
    bound = SH_C0 * SPZ_DC + 0.4886 * 3 * SPZ_SH1 + 15 * 2.9 * SPZ_SH_REST  # sum |Y_k| * err_k, loose
    diff = (eval_sh(got.sh, dirs) - eval_sh(g.sh, dirs)).abs().max()
    assert diff < bound / 4  # errors are not all aligned; a wrong flip gives errors of order |sh| ~ 1
    flipped = g.sh.clone()
    flipped[:, 1:] *= -1
    assert (eval_sh(flipped, dirs) - eval_sh(g.sh, dirs)).abs().max() > diff * 5


def test_spz_rejects_bad_files(tmp_path: Path) -> None:
    good = make_scene(6, 1)
    save_scene(good, tmp_path / "good.spz")
    raw = gzip.decompress((tmp_path / "good.spz").read_bytes())

    def write(name: str, stream: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(gzip.compress(stream))
        return p

    with pytest.raises(FormatError, match="bad magic"):
        load_scene(write("magic.spz", b"XXXX" + raw[4:]))
    for version in (1, 4):
        with pytest.raises(FormatError, match=f"unsupported .spz version {version}"):
            load_scene(write(f"v{version}.spz", raw[:4] + struct.pack("<I", version) + raw[8:]))
    with pytest.raises(FormatError, match="says 7 points.*too short"):
        load_scene(write("more.spz", raw[:8] + struct.pack("<I", 7) + raw[12:]))
    with pytest.raises(FormatError, match="says 5 points.*too long"):
        load_scene(write("fewer.spz", raw[:8] + struct.pack("<I", 5) + raw[12:]))
    with pytest.raises(FormatError, match="too short"):
        load_scene(write("cut.spz", raw[:-3]))
    with pytest.raises(FormatError, match="SH degree 5"):
        load_scene(write("deg.spz", raw[:12] + bytes([5]) + raw[13:]))
    with pytest.raises(FormatError, match="header"):
        load_scene(write("tiny.spz", raw[:10]))
    (tmp_path / "plain.spz").write_bytes(b"\x00" + raw)  # not gzipped
    with pytest.raises(FormatError, match="not a gzip stream"):
        load_scene(tmp_path / "plain.spz")
    (tmp_path / "v4.spz").write_bytes(struct.pack("<II", 0x5053474E, 4) + bytes(24))  # zstd container header
    with pytest.raises(FormatError, match="unsupported .spz version 4 .zstd container"):
        load_scene(tmp_path / "v4.spz")


def test_spz_sh_flip_signs_match_the_basis_parity() -> None:
    """Band 1 of the gsplat basis is (-C1 y, C1 z, -C1 x): under (x,-y,-z) signs are (-, -, +)."""
    from vist3a.gaussians.formats.spz import sh_flip_signs

    s = sh_flip_signs((1.0, -1.0, -1.0), 4)
    assert s[:3] == (-1.0, -1.0, 1.0)
    assert s[3:8] == (-1.0, 1.0, 1.0, -1.0, 1.0)  # xy, yz, 3z^2-1, xz, x^2-y^2
    assert len(s) == 24 and set(s) == {-1.0, 1.0}
    assert sh_flip_signs((1.0, 1.0, 1.0), 2) == (1.0,) * 8


def test_spz_large_positions_use_fewer_fractional_bits(tmp_path: Path) -> None:
    g = make_scene(4, 0)
    g.means[0, 0] = 5000.0  # 12 fractional bits on 24 bits reach only +-2048
    save_scene(g, tmp_path / "far.spz")
    raw = gzip.decompress((tmp_path / "far.spz").read_bytes())
    assert raw[13] < 12
    got = match(g, load_scene(tmp_path / "far.spz"))
    assert (got.means - g.means).abs().max() <= 0.5 / (1 << raw[13]) + 1e-3


# --------------------------------------------------------------------------------------- all pairs


@pytest.mark.parametrize("src", FORMATS)
@pytest.mark.parametrize("dst", FORMATS)
def test_round_trip_between_formats(tmp_path: Path, src: str, dst: str) -> None:
    g = make_scene(25, 2, seed=7)
    save_scene(g, tmp_path / f"a.{src}")
    mid = load_scene(tmp_path / f"a.{src}")
    save_scene(mid, tmp_path / f"b.{dst}")
    got = load_scene(tmp_path / f"b.{dst}")
    lossy = [f for f in (src, dst) if f != "ply"]
    if not lossy:
        assert_close_scene(g, got, "ply")
        return
    # Two lossy steps at most: allow twice the coarser tolerance by checking each step separately.
    assert_close_scene(g, mid, src)
    assert_close_scene(mid, got, dst, degree=mid.sh_degree)
    assert len(got) == len(g)


# --------------------------------------------------------------------------------------- save/load


def test_save_drops_and_counts_invisible_and_non_finite(tmp_path: Path) -> None:
    g = make_scene(10, 1)
    g.means[2, 1] = float("nan")
    g.sh[3, 2, 0] = float("inf")
    g.opacities[5] = 0.5 / 255
    g.opacities[6] = 1.0 / 255  # exactly at the threshold: kept
    for fmt in FORMATS:
        report = save_scene(g, tmp_path / f"s.{fmt}")
        assert (report.written, report.dropped_invalid, report.dropped_transparent) == (7, 2, 1)
        assert "dropped 3 splats" in report.summary()
        assert len(load_scene(tmp_path / f"s.{fmt}")) == 7


def test_save_strict_refuses_nan_and_writes_nothing(tmp_path: Path) -> None:
    g = make_scene(10, 1)
    g.scales[4, 0] = float("nan")
    with pytest.raises(InputError, match=r"1 splats with non-finite.*splat 4, scales"):
        save_scene(g, tmp_path / "s.ply", strict=True)
    g.means[:] = float("nan")
    for fmt in FORMATS:
        with pytest.raises(InputError, match="all 10 splats would be dropped"):
            save_scene(g, tmp_path / f"s.{fmt}")
    no_leftovers(tmp_path, set())


def test_save_rejects_bad_paths_and_shapes(tmp_path: Path) -> None:
    g = make_scene(3, 0)
    with pytest.raises(InputError, match="unknown scene file type '.obj'"):
        save_scene(g, tmp_path / "s.obj")
    with pytest.raises(InputError, match="output folder does not exist"):
        save_scene(g, tmp_path / "missing" / "s.ply")
    with pytest.raises(InputError, match="Gaussians.scales must be"):
        save_scene(Gaussians(g.means, g.quats, g.scales[:, :2], g.opacities, g.sh), tmp_path / "s.ply")
    with pytest.raises(InputError, match="unknown option"):
        save_scene(g, tmp_path / "s.ply", fractional_bits=10)
    no_leftovers(tmp_path, set())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_save_into_read_only_folder(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match="not writable"):
            save_scene(make_scene(3, 0), ro / "s.spz")
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_save_into_unwritable_folder_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same check when this process runs as root (os.access simulated to say: not writable)."""
    import vist3a.io_utils

    monkeypatch.setattr(vist3a.io_utils.os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="output folder is not writable"):
        save_scene(make_scene(3, 0), tmp_path / "s.ply")
    no_leftovers(tmp_path, set())


def test_save_failure_midway_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vist3a.gaussians.formats import spz

    def boom(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("disk full")

    monkeypatch.setattr(spz, "encode", boom)
    with pytest.raises(RuntimeError):
        save_scene(make_scene(3, 0), tmp_path / "s.spz")
    no_leftovers(tmp_path, set())


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="scene file not found"):
        load_scene(tmp_path / "nope.ply")
    with pytest.raises(InputError, match="unknown scene file type '.txt'"):
        load_scene(tmp_path / "a.txt")
    assert scene_format("A.SPZ") == "spz"


def test_save_accepts_other_devices_and_dtypes(tmp_path: Path) -> None:
    g = make_scene(5, 1).to(dtype=torch.float64)
    report = save_scene(g, tmp_path / "s.ply")
    assert report.written == 5
    assert load_scene(tmp_path / "s.ply").dtype == torch.float32


# --------------------------------------------------------------------------------------- example


def test_example_scene_is_shipped_small_and_colourful() -> None:
    path = example_scene_path()
    assert path.name == "scene.ply" and path.stat().st_size < 1_000_000
    g = load_scene("example")
    assert 2000 <= len(g) <= 10000 and g.sh_degree == 0
    colours = g.colors
    for rgb in ([0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.1, 0.3, 0.95], [1.0, 0.55, 0.1]):
        assert ((colours - torch.tensor(rgb)).abs().max(-1).values < 0.06).any(), rgb
    assert g.means[:, 2].min() >= -1e-6  # everything on or above the ground disc (z up)


def test_example_scene_is_reproducible(tmp_path: Path) -> None:
    out = load_script("scripts/make_example_scene.py").main(["--out", str(tmp_path / "scene.ply")])
    assert out.read_bytes() == example_scene_path().read_bytes()
