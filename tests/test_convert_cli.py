"""``vist3a convert IN OUT``: conversions, what it prints, and one-line errors with no output file."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import plyfile
import pytest
import torch

from vist3a.cli import main
from vist3a.gaussians.formats import load_scene, save_scene
from vist3a.gaussians.gaussians import Gaussians


def scene(n: int = 20, degree: int = 1) -> Gaussians:
    g = torch.Generator().manual_seed(3)
    return Gaussians(
        means=torch.rand(n, 3, generator=g) * 2 - 1,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.rand(n, 3, generator=g) * 0.1 + 0.01,
        opacities=torch.rand(n, generator=g) * 0.8 + 0.1,
        sh=torch.rand(n, (degree + 1) ** 2, 3, generator=g) - 0.5,
    )


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["convert", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, pattern: str) -> None:
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vist3a convert: error: ")
    assert pattern in lines[0], lines[0]


def test_convert_chain_ply_spz_splat_ply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_scene(scene(), tmp_path / "a.ply")
    for src, dst in [("a.ply", "b.spz"), ("b.spz", "c.splat"), ("c.splat", "d.ply")]:
        code, out, _ = run_cli(capsys, tmp_path / src, tmp_path / dst)
        assert code == 0
        assert f"wrote {tmp_path / dst}" in out and "20 splats" in out and "dropped 0 splats" in out
    assert load_scene(tmp_path / "b.spz").sh_degree == 1
    assert load_scene(tmp_path / "d.ply").sh_degree == 0
    assert len(load_scene(tmp_path / "d.ply")) == 20


def test_convert_example_and_sh_degree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "example", tmp_path / "ex.spz", "--sh-degree", "2")
    assert code == 0 and "SH degree 2" in out
    assert load_scene(tmp_path / "ex.spz").sh_degree == 2


def test_convert_reports_dropped_splats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 6
    cols = {c: np.linspace(0, 1, n) + i for i, c in enumerate("xyz")}
    cols["x"][1] = np.nan
    cols |= {f"f_dc_{i}": np.zeros(n) for i in range(3)}
    cols |= {"opacity": np.zeros(n)} | {f"scale_{i}": np.full(n, -3.0) for i in range(3)}
    cols["opacity"][4] = -8.0  # sigmoid = 3.4e-4 < 1/255
    cols |= {"rot_0": np.ones(n)} | {f"rot_{i}": np.zeros(n) for i in (1, 2, 3)}
    rec = np.empty(n, dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        rec[k] = v
    plyfile.PlyData([plyfile.PlyElement.describe(rec, "vertex")]).write(str(tmp_path / "nan.ply"))

    code, out, _ = run_cli(capsys, tmp_path / "nan.ply", tmp_path / "out.splat")
    assert code == 0
    assert "4 splats" in out and "dropped 2 splats (1 non-finite/degenerate, 1 below the opacity threshold)" in out
    assert len(load_scene(tmp_path / "out.splat")) == 4

    code, _, err = run_cli(capsys, tmp_path / "nan.ply", tmp_path / "strict.spz", "--strict")
    assert_one_line_error(code, err, "1 splats with non-finite")
    assert not (tmp_path / "strict.spz").exists()


def spz_bytes(g: Gaussians, tmp_path: Path) -> bytes:
    save_scene(g, tmp_path / "tmp.spz")
    raw = gzip.decompress((tmp_path / "tmp.spz").read_bytes())
    (tmp_path / "tmp.spz").unlink()
    return raw


def test_convert_bad_inputs_give_one_line_and_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    outdir = tmp_path / "out"
    outdir.mkdir()
    save_scene(scene(), inputs / "good.ply")
    data = (inputs / "good.ply").read_bytes()
    (inputs / "trunc.ply").write_bytes(data[:-10])
    cols = [line for line in data.split(b"end_header\n")[0].split(b"\n") if b"opacity" not in line]
    body = data.split(b"end_header\n")[1]
    (inputs / "layout.ply").write_bytes(b"\n".join(cols) + b"end_header\n" + body)  # opacity removed from header
    raw = spz_bytes(scene(), inputs)
    (inputs / "magic.spz").write_bytes(gzip.compress(b"ABCD" + raw[4:]))
    (inputs / "count.spz").write_bytes(gzip.compress(raw[:8] + struct.pack("<I", 21) + raw[12:]))
    (inputs / "bad.splat").write_bytes(bytes(33))

    cases = [
        ("trunc.ply", "a.spz", "early end-of-file"),
        ("layout.ply", "a.spz", "missing vertex properties ['opacity']"),
        ("magic.spz", "a.ply", "bad magic"),
        ("count.spz", "a.ply", "says 21 points"),
        ("bad.splat", "a.ply", "not a multiple of 32"),
        ("missing.ply", "a.ply", "scene file not found"),
        ("good.ply", "a.obj", "unknown scene file type '.obj'"),
    ]
    for src, dst, pattern in cases:
        code, out, err = run_cli(capsys, inputs / src, outdir / dst)
        assert_one_line_error(code, err, pattern)
        assert out == ""
    code, _, err = run_cli(capsys, inputs / "good.ply", tmp_path / "nowhere" / "a.spz")
    assert_one_line_error(code, err, "output folder does not exist")
    assert list(outdir.iterdir()) == []
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_convert_into_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_scene(scene(), tmp_path / "a.ply")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, tmp_path / "a.ply", ro / "b.spz")
        assert_one_line_error(code, err, "not writable")
        assert not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


def test_convert_help_lists_the_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert ".ply" in text and ".splat" in text and ".spz" in text and "--strict" in text
