"""Where to stitch: the streaming least-squares layer search (paper Sec. 3.1, METHOD §2).

For every candidate layer k of the reconstruction network, fit the stitching layer S in closed form so
that ``S(upsample(z)) ≈ tokens_k`` (ridge least squares with an intercept), and score how *linearly
transferable* the VAE latent is to that layer by the mean squared error on held-out clips. The layer
with the lowest error is the stitching point (``enc_blocks_2`` for Wan + AnySplat in the paper).

Usage (generic: any latent source and any token taps)::

    search = LayerSearch("conv3d_k5x3x3_o1024_s1x2x2_p2x1x1", ["enc_blocks_1", "enc_blocks_2"])
    for latent, taps in train_clips:            # latent [B,C,T',h,w]; taps[layer] [B,T,h*w,D]
        search.update(latent, taps, split="train")
    for latent, taps in val_clips:
        search.update(latent, taps, split="val")
    report = search.report()                    # fits every layer, scores train and val
    search.save("out/")                         # init_<layer>.safetensors, report.json/.csv, plot

Differences to the official ``find_layer_for_stitching.py`` (METHOD §2.3, §9), all deliberate:

- the design matrix is padded like the layer it initialises (replicate), not with zeros;
- the intercept is part of the least-squares problem (unpenalised), not a mean residual afterwards;
- layers are ranked by held-out MSE (in-sample MSE and R² are reported too);
- activations are never cached: XᵀX (shared by all layers) and XᵀY per layer are accumulated in
  float64 as clips stream by, so memory does not grow with the number of clips.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vist3a.errors import CheckpointError, InputError
from vist3a.io_utils import atomic_path, atomic_write_text
from vist3a.stitching.lstsq import (
    DesignMoments,
    TargetMoments,
    im2col,
    ridge_solve,
    sum_squared_error,
    total_sum_squares,
)
from vist3a.stitching.spec import (
    WAN_TIME_FACTOR,
    ConvSpec,
    StitchGrids,
    check_grids,
    layer_output_grid,
    parse_spec,
    upsample_latent_time,
)

log = logging.getLogger(__name__)

DEFAULT_RIDGE = 1e-4  # absolute, not scaled by n: the official value (METHOD §2.3)
SPLITS = ("train", "val")
INIT_FORMAT = "vist3a-stitch-init-v1"


@dataclass
class LayerScore:
    """Scores of one candidate layer. MSE is per token element (averaged over rows and channels)."""

    layer: str
    depth: int
    train_mse: float
    train_r2: float
    val_mse: float | None
    val_r2: float | None
    train_rows: int
    val_rows: int


@dataclass
class SearchReport:
    """The result of a layer search; ``best_layer`` minimises ``selected_by`` (val MSE when available)."""

    spec: str
    padding_mode: str
    ridge: float
    in_channels: int
    out_channels: int
    design_dim: int
    time_factor: int
    train_clips: int
    val_clips: int
    selected_by: str
    best_layer: str
    layers: list[LayerScore]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def layer_depth(name: str, fallback: int) -> int:
    """Depth of a tap from its trailing number (``enc_blocks_12`` -> 12); ``fallback`` if it has none."""
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else fallback


class LayerSearch:
    """Streaming search for the stitching layer over candidate taps of a reconstruction network.

    Args:
        spec: the stitching layer (a :class:`ConvSpec` or a spec string, e.g.
            ``"conv3d_k5x3x3_o1024_s1x2x2_p2x1x1"``). Its padding mode is used for the design matrix.
        candidate_layers: tap names, in depth order (e.g. ``["enc_blocks_1", ..., "enc_blocks_24"]``).
        ridge: λ of the ridge penalty on the weights (absolute; the intercept is not penalised).
        time_factor: the VAE's temporal compression; latents are upsampled to ``(T'-1)*time_factor+1``.
        device: where the float64 moments live (default: the device of the first latent).

    Memory: one XᵀX [d, d] per split plus XᵀY [d, D] per layer and split, e.g. 24 layers × 2 splits ×
    720×1024 float64 ≈ 280 MB at the official size, independent of the number of clips.
    """

    def __init__(
        self,
        spec: ConvSpec | str,
        candidate_layers: Sequence[str],
        ridge: float = DEFAULT_RIDGE,
        time_factor: int = WAN_TIME_FACTOR,
        device: torch.device | str | None = None,
    ) -> None:
        self.spec = parse_spec(spec)
        if self.spec.dim == 1:
            raise InputError(
                f"{self.spec}: a conv1d cannot map a latent video onto a token grid; use conv2d/conv3d"
            )
        layers = list(candidate_layers)
        if not layers:
            raise InputError("no candidate layers given")
        if len(set(layers)) != len(layers):
            raise InputError(f"candidate layers repeat a name: {layers}")
        if ridge < 0 or not math.isfinite(ridge):
            raise InputError(f"ridge must be a finite number >= 0, got {ridge}")
        self.layers = layers
        self.ridge = float(ridge)
        self.time_factor = int(time_factor)
        self.device = torch.device(device) if device is not None else None
        self.in_channels: int | None = None
        self.clips = {s: 0 for s in SPLITS}
        self._design: dict[str, DesignMoments] = {}
        self._targets: dict[str, dict[str, TargetMoments]] = {s: {} for s in SPLITS}
        self._fits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------------------------------- update
    @property
    def design_dim(self) -> int:
        """d = C·prod(kernel), the columns of the design matrix without the intercept."""
        if self.in_channels is None:
            raise InputError("no data yet: call update() first")
        return self.spec.patch_dim(self.in_channels)

    @torch.no_grad()
    def update(self, latent: torch.Tensor, tokens: Mapping[str, torch.Tensor], split: str = "train") -> None:
        """Add a batch of clips to the moments of ``split``.

        Args:
            latent: raw VAE latents ``[B, C, T', h, w]`` (any float dtype; upsampled in float64).
            tokens: for every candidate layer, its patch tokens ``[B, T, h_tok*w_tok, D]`` or
                ``[B, T, h_tok, w_tok, D]`` (frame-major, row-major patches, no cls/register tokens).
            split: ``"train"`` (used for the fit) or ``"val"`` (held out, used for scoring).
        """
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {split!r}")
        if not torch.is_tensor(latent) or latent.ndim != 5 or not latent.is_floating_point():
            shape = tuple(latent.shape) if torch.is_tensor(latent) else type(latent).__name__
            raise InputError(f"latent must be a float tensor [B, C, T', h, w], got {shape}")
        missing = [k for k in self.layers if k not in tokens]
        extra = [k for k in tokens if k not in self.layers]
        if missing or extra:
            raise InputError(
                f"tokens must hold exactly the candidate layers; missing {missing}, unexpected {extra}"
            )
        b, c = latent.shape[:2]
        if self.in_channels is not None and c != self.in_channels:
            raise InputError(f"latent has {c} channels, earlier batches had {self.in_channels}")
        if not torch.isfinite(latent).all():
            raise InputError("latent contains NaN or Inf")
        grid = layer_output_grid(self.spec, tuple(latent.shape[1:]), self.time_factor)  # T, h_tok, w_tok, D
        taps = {
            name: self._token_grid(name, tokens[name], b, tuple(latent.shape[1:])) for name in self.layers
        }
        for name, y in taps.items():  # validate everything before touching the moments
            if not torch.isfinite(y).all():
                raise InputError(f"tokens of {name} contain NaN or Inf")
        self.in_channels = c
        if self.device is None:
            self.device = latent.device

        if split not in self._design:
            self._design[split] = DesignMoments(self.design_dim, self.device)
        design = self._design[split]
        targets = self._targets[split]
        for name in self.layers:
            if name not in targets:
                targets[name] = TargetMoments(self.design_dim, grid[3], self.device)
        x_up = upsample_latent_time(latent.to(self.device, torch.float64), self.time_factor)
        for i in range(b):  # one clip at a time bounds the float64 im2col buffer
            x = im2col(x_up[i : i + 1], self.spec)  # rows (T, h_tok, w_tok), d columns
            design.add(x)
            for name in self.layers:
                targets[name].add(x, taps[name][i].reshape(-1, grid[3]))
        self.clips[split] += b
        self._fits.clear()

    def _token_grid(self, name: str, y: torch.Tensor, batch: int, latent_grid: tuple) -> torch.Tensor:
        """Check one tap against the layer's output grid; return it as [B, T, h_tok, w_tok, D]."""
        if not torch.is_tensor(y) or y.ndim not in (4, 5):
            shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            raise InputError(f"tokens of {name} must be [B,T,h*w,D] or [B,T,h,w,D], got {shape}")
        if y.shape[0] != batch:
            raise InputError(f"tokens of {name} have batch {y.shape[0]} but the latent has batch {batch}")
        t_out, h_out, w_out, _d = layer_output_grid(self.spec, latent_grid, self.time_factor)
        if y.ndim == 5:
            tok = (y.shape[1], y.shape[2], y.shape[3], y.shape[4])
        else:
            n = y.shape[2]
            if n == h_out * w_out:
                hw = (h_out, w_out)
            else:  # the official hook assumes square grids; say what the tokens would need
                side = math.isqrt(n)
                if side * side != n:
                    raise InputError(
                        f"tokens of {name} have {n} patches per frame, not the {h_out}x{w_out} grid that "
                        f"{self.spec} produces; pass them as [B,T,h,w,D] to name the grid"
                    )
                hw = (side, side)
            tok = (y.shape[1], *hw, y.shape[3])
        try:
            check_grids(self.spec, StitchGrids(latent_grid, tok, self.time_factor))
        except InputError as exc:
            raise InputError(f"tokens of {name}: {exc}") from None
        return y.reshape(batch, *tok)

    def merge(self, other: LayerSearch) -> LayerSearch:
        """Add another search's moments to this one (e.g. from another process or GPU); returns self.

        Both must have the same spec, layers, λ and latent channels. Sums are exact, so searching two
        halves of the data and merging equals searching all of it.
        """
        if (str(other.spec), other.layers, other.time_factor) != (
            str(self.spec),
            self.layers,
            self.time_factor,
        ):
            raise InputError("can only merge searches with the same spec, candidate layers and time factor")
        if other.in_channels is None:
            return self
        if self.in_channels is None:
            self.in_channels = other.in_channels
            self.device = self.device or other.device
        elif other.in_channels != self.in_channels:
            raise InputError(f"cannot merge: latent channels {other.in_channels} != {self.in_channels}")
        for split, theirs in other._design.items():
            dev = self.device
            if split not in self._design:
                self._design[split] = DesignMoments(self.design_dim, dev)
                for name in self.layers:
                    out_dim = other._targets[split][name].out_dim
                    self._targets[split][name] = TargetMoments(self.design_dim, out_dim, dev)
            mine = self._design[split]
            mine.n += theirs.n
            mine.x_sum += theirs.x_sum.to(mine.x_sum.device)
            mine.xtx += theirs.xtx.to(mine.xtx.device)
            for name in self.layers:
                a, b = self._targets[split][name], other._targets[split][name]
                for field_name in ("y_sum", "y_sq", "xty"):
                    getattr(a, field_name).add_(getattr(b, field_name).to(a.xty.device))
            self.clips[split] += other.clips[split]
        self._fits.clear()
        return self

    # -------------------------------------------------------------------------------------- fit/score
    def fit(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Solve every layer's ridge problem on the training moments: ``{layer: (W [d, D], b [D])}``."""
        if "train" not in self._design:
            raise InputError("no training clips: call update(latent, tokens, split='train') first")
        if not self._fits:
            for name in self.layers:
                self._fits[name] = ridge_solve(
                    self._design["train"], self._targets["train"][name], self.ridge
                )
        return self._fits

    def report(self) -> SearchReport:
        """Fit (if needed) and score every layer; ``best_layer`` has the lowest val MSE (else train MSE)."""
        fits = self.fit()
        rows: list[LayerScore] = []
        for i, name in enumerate(self.layers):
            w, b = fits[name]
            scores: dict[str, tuple[float | None, float | None, int]] = {}
            for split in SPLITS:
                design = self._design.get(split)
                if design is None:
                    scores[split] = (None, None, 0)
                    continue
                target = self._targets[split][name]
                sse = sum_squared_error(design, target, w, b)
                sst = total_sum_squares(design, target)
                mse = sse / (design.n * target.out_dim)
                r2 = 1.0 - sse / sst if sst > 0 else float("nan")
                scores[split] = (mse, r2, design.n)
            rows.append(
                LayerScore(
                    layer=name,
                    depth=layer_depth(name, i + 1),
                    train_mse=float(scores["train"][0]),
                    train_r2=float(scores["train"][1]),
                    val_mse=scores["val"][0],
                    val_r2=scores["val"][1],
                    train_rows=scores["train"][2],
                    val_rows=scores["val"][2],
                )
            )
        by = "val_mse" if "val" in self._design else "train_mse"
        if by == "train_mse":
            log.warning("no held-out clips: ranking layers by in-sample MSE")
        best = min(rows, key=lambda r: getattr(r, by))
        assert self.in_channels is not None
        return SearchReport(
            spec=str(self.spec),
            padding_mode=self.spec.padding_mode,
            ridge=self.ridge,
            in_channels=self.in_channels,
            out_channels=self.spec.out_channels,
            design_dim=self.design_dim,
            time_factor=self.time_factor,
            train_clips=self.clips["train"],
            val_clips=self.clips["val"],
            selected_by=by,
            best_layer=best.layer,
            layers=rows,
        )

    def layer_state_dict(self, layer: str) -> dict[str, torch.Tensor]:
        """The fitted layer as a conv state dict: ``weight`` [D, C, *kernel], ``bias`` [D] (float32, CPU)."""
        if layer not in self.layers:
            raise InputError(f"unknown layer {layer!r}; candidates: {self.layers}")
        w, b = self.fit()[layer]
        assert self.in_channels is not None
        weight = w.T.reshape(self.spec.out_channels, self.in_channels, *self.spec.kernel_size)
        return {"weight": weight.float().cpu().contiguous(), "bias": b.float().cpu().contiguous()}

    def build_layer(self, layer: str) -> torch.nn.Module:
        """A ready stitching layer (torch conv) initialised with the fit for ``layer``."""
        state = self.layer_state_dict(layer)
        assert self.in_channels is not None
        conv = self.spec.build(self.in_channels)
        conv.load_state_dict(state)
        return conv

    def accumulator_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of every accumulated tensor (for memory checks; independent of the clip count)."""
        out: dict[str, tuple[int, ...]] = {}
        for split, design in self._design.items():
            out[f"{split}/xtx"] = tuple(design.xtx.shape)
            out[f"{split}/x_sum"] = tuple(design.x_sum.shape)
            for name, t in self._targets[split].items():
                for field_name in ("xty", "y_sum", "y_sq"):
                    out[f"{split}/{name}/{field_name}"] = tuple(getattr(t, field_name).shape)
        return out

    # ------------------------------------------------------------------------------------------- save
    def save(self, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
        """Write ``init_<layer>.safetensors`` per layer, ``report.json``, ``report.csv`` and ``mse_vs_depth.png``.

        Returns the written paths by role (``report_json``, ``report_csv``, ``plot``, ``init/<layer>``).
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report = self.report()
        paths: dict[str, Path] = {}
        for name in self.layers:
            paths[f"init/{name}"] = save_init(
                out / f"init_{name}.safetensors", self.layer_state_dict(name), self.spec, name, self.ridge
            )
        data = _finite_or_none(report.to_dict())
        data["init_files"] = {name: f"init_{name}.safetensors" for name in self.layers}
        paths["report_json"] = atomic_write_text(out / "report.json", json.dumps(data, indent=2) + "\n")
        paths["report_csv"] = atomic_write_text(out / "report.csv", report_csv(report))
        if plot:
            paths["plot"] = plot_mse_vs_depth(report, out / "mse_vs_depth.png")
        return paths


# ----------------------------------------------------------------------------------------------- files
def _finite_or_none(obj: Any) -> Any:
    """NaN/inf -> None, recursively, so report.json stays strict JSON (R² is NaN for constant targets)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def report_csv(report: SearchReport) -> str:
    """One row per layer: layer, depth, train/val MSE and R², rows, and whether it is the best."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["layer", "depth", "train_mse", "train_r2", "val_mse", "val_r2", "train_rows", "val_rows", "best"]
    )
    for r in report.layers:
        writer.writerow(
            [
                r.layer,
                r.depth,
                f"{r.train_mse:.8g}",
                f"{r.train_r2:.6f}",
                "" if r.val_mse is None else f"{r.val_mse:.8g}",
                "" if r.val_r2 is None else f"{r.val_r2:.6f}",
                r.train_rows,
                r.val_rows,
                int(r.layer == report.best_layer),
            ]
        )
    return buf.getvalue()


def save_init(
    path: str | Path, state: Mapping[str, torch.Tensor], spec: ConvSpec, layer: str, ridge: float
) -> Path:
    """Write a stitching-layer initialisation (``weight``, ``bias``) as safetensors with its spec and layer."""
    from safetensors.torch import save_file

    meta = {"format": INIT_FORMAT, "spec": str(spec), "padding_mode": spec.padding_mode, "layer": layer}
    meta["ridge"] = repr(ridge)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    return Path(path)


def load_init(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a stitching-layer init: ours (``.safetensors``, with metadata) or the official ``state_dict_*.pt``.

    Returns ``({"weight", "bias"}, metadata)``; metadata is empty for the official ``.pt`` files.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"stitching init not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), "pt") as f:
                meta = dict(f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read stitching init {p}: {exc}") from None
    else:
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read stitching init {p}: {exc}") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        meta = {}
    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"stitching init {p} must hold exactly 'weight' and 'bias', found {keys}")
    return state, meta


def plot_mse_vs_depth(report: SearchReport, path: str | Path) -> Path:
    """PNG of train (and val) MSE against layer depth, best layer marked. matplotlib if present, else PIL."""
    depths = [r.depth for r in report.layers]
    series = {"train MSE": [r.train_mse for r in report.layers]}
    if report.val_clips:
        series["val MSE"] = [float(r.val_mse) for r in report.layers if r.val_mse is not None]
    best = next(r for r in report.layers if r.layer == report.best_layer)
    title = f"{report.spec}: best {report.best_layer} ({report.selected_by})"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_pil(depths, series, best.depth, title, Path(path))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, ys in series.items():
        ax.plot(depths, ys, marker="o", label=label)
    ax.axvline(best.depth, color="gray", linestyle="--", label=f"best: {report.best_layer}")
    ax.set_xlabel("layer depth")
    ax.set_ylabel("MSE per token element")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def _plot_pil(depths: list[int], series: dict[str, list[float]], best: int, title: str, path: Path) -> Path:
    from PIL import Image, ImageDraw

    w, h, left, right, top, bottom = 720, 420, 80, 20, 40, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    ys_all = [y for ys in series.values() for y in ys]
    lo, hi = min(ys_all), max(ys_all)
    if hi - lo < 1e-12 * max(abs(hi), 1.0):
        lo, hi = lo - 0.5 * abs(lo or 1), hi + 0.5 * abs(hi or 1)
    d_lo, d_hi = min(depths), max(depths)
    d_span = max(d_hi - d_lo, 1)

    def xy(d: float, y: float) -> tuple[float, float]:
        return (
            left + (d - d_lo) / d_span * (w - left - right),
            top + (hi - y) / (hi - lo) * (h - top - bottom),
        )

    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    for frac in (0.0, 0.5, 1.0):
        y = lo + frac * (hi - lo)
        _, py = xy(d_lo, y)
        draw.text((4, py - 6), f"{y:.3g}", fill="black")
    for d in sorted(set(depths)):
        px, _ = xy(d, lo)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        draw.text((px - 4, h - bottom + 6), str(d), fill="black")
    bx, _ = xy(best, lo)
    draw.line([bx, top, bx, h - bottom], fill=(150, 150, 150))
    colors = [(31, 119, 180), (255, 127, 14)]
    for (label, ys), color, row in zip(series.items(), colors, range(2), strict=False):
        pts = [xy(d, y) for d, y in zip(depths, ys, strict=False)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for px, py in pts:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        draw.text((w - right - 120, top + 6 + 14 * row), label, fill=color)
    draw.text((left, 12), title, fill="black")
    draw.text((w // 2 - 30, h - 18), "layer depth", fill="black")
    draw.text((4, top - 14), "MSE", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path
