"""Image metrics of novel-view synthesis: PSNR, SSIM and LPIPS-VGG, as the NVS papers compute them.

The conventions follow pixelSplat / AnySplat / VIST3A (``src/evaluation/metrics.py`` there):

* **PSNR** per image on [0,1]: both images clipped to [0,1], ``mse`` = mean over C,H,W,
  ``PSNR = -10·log10(mse)``; a set of images is summarised by the *mean of per-image PSNRs* (not the
  PSNR of the mean MSE). Identical images have ``mse = 0`` and PSNR ``+inf``; :func:`mean_finite`
  averages the finite values and counts the infinite ones so they are reported, never a NaN.
* **SSIM** equal to ``skimage.metrics.structural_similarity(gt, pred, win_size=11,
  gaussian_weights=True, data_range=1.0, channel_axis=0)``: Gaussian window of sigma 1.5 truncated
  at radius 5 (11 taps), sample covariance (``N/(N-1)`` with ``N = 11²``), K1 = 0.01, K2 = 0.03,
  mean over the map after dropping a 5-pixel border, then mean over channels. Dropping the border
  makes skimage's reflective padding irrelevant, so a *valid* convolution gives the same numbers.
  Written in torch: batched and differentiable.
* **LPIPS** v0.1 with the VGG16 trunk, inputs in [0,1] (``lpips.LPIPS(net="vgg")(a, b,
  normalize=True)``). The VGG16 ``features`` keep torchvision's layer indices so its checkpoint
  ``vgg16-397923af.pth`` loads by key; the five 1×1 "lin" layers load from the ``lpips`` package's
  ``weights/v0.1/vgg.pth`` (keys ``lin{k}.model.1.weight``). Neither file is downloaded here.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vist3a.errors import CheckpointError, InputError, MissingWeightsError

log = logging.getLogger(__name__)

__all__ = [
    "LPIPS",
    "VGG16Features",
    "psnr",
    "ssim",
    "mean_finite",
    "gaussian_window",
    "find_lpips_weights",
    "load_lpips",
    "compute_metrics",
    "MetricSummary",
    "SampleScore",
    "DirScore",
    "find_pair_samples",
    "score_sample",
    "score_dir",
    "write_pair_images",
]


def _as_batch(pred: torch.Tensor, target: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes and flatten leading dims: ``[...,C,H,W]`` → ``[B,C,H,W]``."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise InputError(f"{name}: expected torch tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.shape != target.shape:
        raise InputError(f"{name}: prediction {list(pred.shape)} and target {list(target.shape)} differ in shape")
    if pred.ndim < 3:
        raise InputError(f"{name}: images must be [...,C,H,W], got {list(pred.shape)}")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    c, h, w = pred.shape[-3:]
    return pred.reshape(-1, c, h, w), target.reshape(-1, c, h, w)


# --------------------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------------------
def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0,1].

    Args:
        pred, target: ``[...,C,H,W]`` (or ``[C,H,W]``); both are clipped to [0,1] first.

    Returns:
        ``[B]`` with ``B`` the product of the leading dims (1 for a single image). Identical images
        give ``+inf`` (never NaN).
    """
    p, t = _as_batch(pred, target, "psnr")
    if p.dtype not in (torch.float32, torch.float64):
        p, t = p.float(), t.float()
    mse = (p.clamp(0, 1) - t.clamp(0, 1)).pow(2).flatten(1).mean(1)
    out = -10.0 * torch.log10(mse)  # log10(0) = -inf → +inf, no NaN
    return torch.where(mse == 0, torch.full_like(out, math.inf), out)


def mean_finite(values: Iterable[float] | torch.Tensor) -> tuple[float, int]:
    """Mean of the finite values and the number of ``+inf`` ones (identical image pairs).

    All values infinite → ``(inf, n)``; no values → ``(nan, 0)``. NaN inputs raise.
    """
    vals = [float(v) for v in (values.flatten().tolist() if isinstance(values, torch.Tensor) else values)]
    if any(math.isnan(v) for v in vals):
        raise InputError("metric values contain NaN")
    finite = [v for v in vals if math.isfinite(v)]
    n_inf = len(vals) - len(finite)
    if finite:
        return sum(finite) / len(finite), n_inf
    return (math.inf, n_inf) if n_inf else (math.nan, 0)


# --------------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------------
def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The 1D Gaussian of ``scipy.ndimage.gaussian_filter`` (radius ``int(truncate·sigma + 0.5)``), sum 1."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype)


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = True,
) -> torch.Tensor:
    """Per-image SSIM, equal to skimage's ``structural_similarity(..., win_size=11, gaussian_weights=True,
    data_range=1, channel_axis=0)`` (to float rounding).

    Args:
        pred, target: ``[...,C,H,W]`` (or ``[C,H,W]``) with H, W ≥ 11; not clipped.
        data_range: the value range (1 for [0,1] images).
        win_size: sets the covariance normalisation ``N = win_size²`` and the cropped border, as in
            skimage; the Gaussian itself is fixed by ``sigma`` (radius ``int(3.5·sigma + 0.5)``).

    Returns:
        ``[B]``: the mean SSIM of each image (over the cropped map, then over channels).
        Differentiable with respect to both inputs.
    """
    p, t = _as_batch(pred, target, "ssim")
    if p.dtype not in (torch.float32, torch.float64):  # integers and half precision: compute in fp32
        p, t = p.float(), t.float()
    if win_size % 2 != 1:
        raise InputError(f"ssim: win_size must be odd, got {win_size}")
    b, c, h, w = p.shape
    g = gaussian_window(sigma, dtype=p.dtype).to(p.device)
    r = g.numel() // 2
    pad = (win_size - 1) // 2
    if min(h, w) < win_size or min(h, w) < g.numel():
        raise InputError(f"ssim: images of {h}x{w} are smaller than the {win_size}-pixel window")
    x = p.reshape(b * c, 1, h, w)
    y = t.reshape(b * c, 1, h, w)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [BC,5,H,W]
    kx = g.view(1, 1, 1, -1).expand(5, 1, 1, g.numel())
    ky = g.view(1, 1, -1, 1).expand(5, 1, g.numel(), 1)
    filt = F.conv2d(F.conv2d(stack, kx, groups=5), ky, groups=5)  # valid: [BC,5,H-2r,W-2r]
    # skimage keeps the full-size map and crops `pad`; the valid map has lost `r` already.
    extra = pad - r
    if extra > 0:
        filt = filt[..., extra:-extra, extra:-extra]
    elif extra < 0:
        raise InputError(f"ssim: win_size {win_size} is smaller than the Gaussian window {g.numel()}")
    ux, uy, uxx, uyy, uxy = filt.unbind(1)
    n = win_size**2
    cov_norm = n / (n - 1) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).view(b, c).mean(1)


# --------------------------------------------------------------------------------------------------
# LPIPS
# --------------------------------------------------------------------------------------------------
# torchvision's VGG16 configuration "D": channels per conv, "M" = max-pool.
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# LPIPS taps the ReLU outputs relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices into `features`).
_LPIPS_TAPS = (3, 8, 15, 22, 29)
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
TORCHVISION_VGG16_FILE = "vgg16-397923af.pth"
LPIPS_VGG_FILE = "lpips_vgg_v0.1.pth"


class VGG16Features(nn.Module):
    """The convolutional part of torchvision's VGG16 up to ``relu5_3`` (``features[0:30]``).

    Module indices equal torchvision's, so ``features.{i}.weight/bias`` of ``vgg16-397923af.pth``
    load as they are. ``forward`` returns the five LPIPS taps ``[B,64,H,W] … [B,512,H/16,W/16]``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = int(v)
        self.features = nn.Sequential(*layers)  # 30 modules: indices 0..29

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _LPIPS_TAPS:
                taps.append(x)
        return taps


class LPIPS(nn.Module):
    """LPIPS v0.1 with a VGG16 trunk (Zhang et al. 2018), as ``lpips.LPIPS(net="vgg")``.

    ``forward(a, b)`` takes images ``[...,3,H,W]`` in [0,1] (``normalize=True`` in the lpips package)
    and returns the per-image distance ``[B]``. Built with random weights; load real ones with
    :meth:`load_vgg_state_dict` / :meth:`load_lin_state_dict` or use :func:`load_lpips`.
    """

    def __init__(self) -> None:
        super().__init__()
        # lpips' ScalingLayer: inputs in [-1,1] are standardised with ImageNet-like statistics.
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = VGG16Features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in _LPIPS_CHANNELS)
        self.requires_grad_(False)
        self.eval()

    # --- weights ------------------------------------------------------------------------------
    def load_vgg_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load VGG16 conv weights from torchvision keys (``features.{i}.weight``) or lpips keys
        (``net.slice{k}.{i}.weight``); other keys (the classifier) are ignored."""
        own = self.net.state_dict()
        new: dict[str, torch.Tensor] = {}
        for key, val in state.items():
            parts = key.split(".")
            if parts[0] == "features" and len(parts) == 3:
                name = key
            elif parts[0] == "net" and len(parts) == 4 and parts[1].startswith("slice"):
                name = f"features.{parts[2]}.{parts[3]}"
            else:
                continue
            if name in own:
                new[name] = val
        missing = sorted(set(own) - set(new))
        if missing:
            raise CheckpointError(f"VGG16 weights lack {len(missing)} keys, e.g. {missing[:3]} (expected torchvision's vgg16)")
        for name, val in new.items():
            if tuple(val.shape) != tuple(own[name].shape):
                raise CheckpointError(f"VGG16 weight {name} has shape {list(val.shape)}, expected {list(own[name].shape)}")
        self.net.load_state_dict(new)

    def load_lin_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load the five 1×1 layers from lpips keys ``lin{k}.model.1.weight`` (``.model.0.`` without dropout)
        or this module's own ``lins.{k}.weight``."""
        new = {}
        for k in range(len(self.lins)):
            for key in (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight", f"lins.{k}.weight"):
                if key in state:
                    new[f"{k}.weight"] = state[key]
                    break
            else:
                raise CheckpointError(f"LPIPS weights lack lin{k}.model.1.weight (expected lpips v0.1 vgg.pth)")
            want = tuple(self.lins[k].weight.shape)
            if tuple(new[f"{k}.weight"].shape) != want:
                raise CheckpointError(
                    f"LPIPS lin{k} weight has shape {list(new[f'{k}.weight'].shape)}, expected {list(want)}"
                )
        self.lins.load_state_dict(new)

    # --- forward ------------------------------------------------------------------------------
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS ``[B]`` of images ``[...,3,H,W]`` in [0,1]."""
        p, t = _as_batch(pred, target, "lpips")
        if p.shape[1] != 3:
            raise InputError(f"lpips: images need 3 channels, got {p.shape[1]}")
        dtype = self.shift.dtype
        x = torch.cat([p, t]).to(dtype)
        x = (2 * x - 1 - self.shift) / self.scale
        feats = self.net(x)
        b = p.shape[0]
        total = torch.zeros(b, dtype=dtype, device=x.device)
        for f, lin in zip(feats, self.lins, strict=True):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # unit length per position
            d = (f[:b] - f[b:]).pow(2)
            total = total + lin(d).mean((1, 2, 3))
        return total


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_lpips_weights(
    vgg_path: str | os.PathLike[str] | None = None, lin_path: str | os.PathLike[str] | None = None
) -> tuple[Path, Path]:
    """Locate the two weight files of LPIPS-VGG without downloading anything.

    Search order. VGG16: ``vgg_path``, ``$VIST3A_VGG16_WEIGHTS``, ``<torch hub>/checkpoints/vgg16-397923af.pth``.
    Linear layers: ``lin_path``, ``$VIST3A_LPIPS_WEIGHTS``, ``<torch hub>/checkpoints/lpips_vgg_v0.1.pth``,
    the installed ``lpips`` package's ``weights/v0.1/vgg.pth``. Raises :class:`MissingWeightsError`
    with one message naming both files and where to put them.
    """
    for given, what in ((vgg_path, "VGG16"), (lin_path, "LPIPS linear-layer")):
        if given is not None and not Path(given).is_file():
            raise MissingWeightsError(f"{what} weights file not found: {given}")
    hub = _hub_checkpoints()
    vgg_cands = [vgg_path, os.environ.get("VIST3A_VGG16_WEIGHTS"), hub / TORCHVISION_VGG16_FILE]
    lin_cands: list[str | os.PathLike[str] | None] = [lin_path, os.environ.get("VIST3A_LPIPS_WEIGHTS"), hub / LPIPS_VGG_FILE]
    try:
        import importlib.util

        spec = importlib.util.find_spec("lpips")
        if spec is not None and spec.origin:
            lin_cands.append(Path(spec.origin).parent / "weights" / "v0.1" / "vgg.pth")
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        pass
    vgg = next((Path(c) for c in vgg_cands if c and Path(c).is_file()), None)
    lin = next((Path(c) for c in lin_cands if c and Path(c).is_file()), None)
    if vgg is None or lin is None:
        what = []
        if vgg is None:
            what.append(
                f"torchvision's VGG16 weights '{TORCHVISION_VGG16_FILE}' (https://download.pytorch.org/models/"
                f"{TORCHVISION_VGG16_FILE}) in {hub} or $VIST3A_VGG16_WEIGHTS"
            )
        if lin is None:
            what.append(
                f"the lpips v0.1 VGG linear weights (lpips package file weights/v0.1/vgg.pth) as {hub / LPIPS_VGG_FILE}"
                " or $VIST3A_LPIPS_WEIGHTS"
            )
        raise MissingWeightsError("LPIPS-VGG needs " + " and ".join(what))
    return vgg, lin


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files
        raise CheckpointError(f"cannot read weights {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return state


def load_lpips(
    device: torch.device | str = "cpu",
    vgg_path: str | os.PathLike[str] | None = None,
    lin_path: str | os.PathLike[str] | None = None,
) -> LPIPS:
    """LPIPS-VGG with the published weights from local files (see :func:`find_lpips_weights`)."""
    vgg, lin = find_lpips_weights(vgg_path, lin_path)
    model = LPIPS()
    model.load_vgg_state_dict(_load_state(vgg))
    model.load_lin_state_dict(_load_state(lin))
    log.debug("LPIPS-VGG weights: %s, %s", vgg, lin)
    return model.to(device)


# --------------------------------------------------------------------------------------------------
# All three
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def compute_metrics(
    pred: torch.Tensor, target: torch.Tensor, lpips: LPIPS | None = None
) -> dict[str, torch.Tensor]:
    """PSNR, SSIM and (when a model is given) LPIPS per image, each ``[B]`` on the CPU.

    ``pred``/``target``: ``[...,3,H,W]`` in [0,1].
    """
    out = {"psnr": psnr(pred, target).cpu(), "ssim": ssim(pred, target).cpu()}
    if lpips is not None:
        dev = lpips.shift.device
        out["lpips"] = lpips(pred.to(dev), target.to(dev)).cpu()
    return out


@dataclass
class MetricSummary:
    """Means of per-image metrics over a set of images or samples.

    ``psnr`` is the mean over finite values; ``n_identical`` counts the +inf ones (identical pairs).
    ``lpips`` is ``None`` when LPIPS was not computed.
    """

    psnr: float
    ssim: float
    lpips: float | None
    n: int
    n_identical: int = 0

    @classmethod
    def of(cls, psnrs: Iterable[float], ssims: Iterable[float], lpipss: Iterable[float] | None) -> MetricSummary:
        ps = list(psnrs)
        ss = [float(v) for v in ssims]
        mean_psnr, n_inf = mean_finite(ps)
        lp = None if lpipss is None else [float(v) for v in lpipss]
        return cls(
            psnr=mean_psnr,
            ssim=sum(ss) / len(ss) if ss else math.nan,
            lpips=(sum(lp) / len(lp) if lp else math.nan) if lp is not None else None,
            n=len(ps),
            n_identical=n_inf,
        )


# --------------------------------------------------------------------------------------------------
# Folders of rendered / ground-truth pairs
# --------------------------------------------------------------------------------------------------
PAIR_EXTS = (".png", ".jpg", ".jpeg")


@dataclass
class SampleScore:
    """Per-sample means over its image pairs (PSNR over finite values; ``n_identical`` = +inf ones)."""

    sample: str
    n_images: int
    psnr: float
    ssim: float
    lpips: float | None
    n_identical: int


@dataclass
class DirScore:
    """Scores of one results folder: its samples, the overall summary and the samples left out."""

    root: Path
    samples: list[SampleScore]
    overall: MetricSummary
    n_images: int
    n_identical_images: int
    skipped: dict[str, str]


def find_pair_samples(root: str | os.PathLike[str]) -> dict[str, Path]:
    """Sample folders of a results folder: ``root/<sample>/{gt,pred}/``, the official ``root/images/<sample>/…``,
    or ``root/{gt,pred}/`` itself (one sample).

    Raises:
        InputError: ``root`` is not a folder or holds no sample folder with ``gt/`` and ``pred/``.
    """
    r = Path(root)
    if not r.is_dir():
        raise InputError(f"not a folder: {r}")
    if (r / "gt").is_dir() and (r / "pred").is_dir():  # a single sample folder
        return {r.name: r}
    for base in (r, r / "images"):
        if not base.is_dir():
            continue
        found = {d.name: d for d in sorted(base.iterdir()) if d.is_dir() and (d / "gt").is_dir() and (d / "pred").is_dir()}
        if found:
            return found
    raise InputError(f"{r} holds no <sample>/gt/ + <sample>/pred/ folders (see docs/evaluation.md)")


def _read_rgb(path: Path) -> torch.Tensor:
    from vist3a.data.transforms import read_image

    return read_image(path)


def score_sample(sample_dir: Path, lpips: LPIPS | None = None) -> SampleScore:
    """Score the ``gt/`` and ``pred/`` images of one sample, paired by file name.

    Raises:
        InputError: unpaired files, no images, or a pair of different sizes (names the file).
    """
    def names(d: Path) -> set[str]:
        return {p.name for p in d.iterdir() if p.suffix.lower() in PAIR_EXTS}

    gt_names, pred_names = names(sample_dir / "gt"), names(sample_dir / "pred")
    if gt_names != pred_names:
        only_gt, only_pred = sorted(gt_names - pred_names), sorted(pred_names - gt_names)
        what = f"gt/{only_gt[0]} has no prediction" if only_gt else f"pred/{only_pred[0]} has no ground truth"
        raise InputError(f"{sample_dir.name}: {what}")
    if not gt_names:
        raise InputError(f"{sample_dir.name}: no images in gt/")
    gts, preds = [], []
    for name in sorted(gt_names):
        g, p = _read_rgb(sample_dir / "gt" / name), _read_rgb(sample_dir / "pred" / name)
        if g.shape != p.shape:
            raise InputError(f"{sample_dir.name}/{name}: gt {list(g.shape)} and pred {list(p.shape)} differ in size")
        gts.append(g)
        preds.append(p)
    ps, ss, ls = [], [], []
    if len({tuple(g.shape) for g in gts}) == 1:  # one batch per sample
        groups = [(torch.stack(preds), torch.stack(gts))]
    else:
        groups = [(p[None], g[None]) for p, g in zip(preds, gts, strict=True)]
    for p, g in groups:
        m = compute_metrics(p, g, lpips)
        ps += m["psnr"].tolist()
        ss += m["ssim"].tolist()
        if "lpips" in m:
            ls += m["lpips"].tolist()
    s = MetricSummary.of(ps, ss, ls if lpips is not None else None)
    return SampleScore(sample_dir.name, s.n, s.psnr, s.ssim, s.lpips, s.n_identical)


def score_dir(root: str | os.PathLike[str], lpips: LPIPS | None = None, progress: bool = True) -> DirScore:
    """Score every sample of a results folder; samples that cannot be scored are skipped and named.

    Aggregation as VIST3A's ``calculate_metric.py``: mean over a sample's images, then over samples.
    """
    from tqdm import tqdm

    samples = find_pair_samples(root)
    scores: list[SampleScore] = []
    skipped: dict[str, str] = {}
    for name, d in tqdm(samples.items(), desc=f"scoring {Path(root).name}", disable=not progress, unit="sample"):
        try:
            scores.append(score_sample(d, lpips))
        except (InputError, OSError) as exc:
            skipped[name] = str(exc)
            log.warning("skipping sample %s: %s", name, exc)
    if not scores:
        raise InputError(f"{root}: no sample could be scored ({len(skipped)} skipped, e.g. {next(iter(skipped.values()), '')})")
    overall = MetricSummary.of(
        [s.psnr for s in scores], [s.ssim for s in scores], [s.lpips for s in scores] if lpips is not None else None  # type: ignore[misc]
    )
    return DirScore(
        root=Path(root),
        samples=scores,
        overall=overall,
        n_images=sum(s.n_images for s in scores),
        n_identical_images=sum(s.n_identical for s in scores),
        skipped=skipped,
    )


def write_pair_images(root: str | os.PathLike[str], sample: str, gt: torch.Tensor, pred: torch.Tensor) -> Path:
    """Write one sample of the results layout: ``root/<sample>/{gt,pred}/00000k.png`` (8-bit, atomic).

    Args:
        gt, pred: ``[V,3,H,W]`` in [0,1] (clipped, rounded to 8 bit as the official ``save_image``).

    Returns:
        The sample folder.
    """
    import numpy as np
    from PIL import Image

    from vist3a.io_utils import atomic_path

    g, p = _as_batch(pred, gt, "write_pair_images")[::-1]
    if g.shape[1] != 3:
        raise InputError(f"write_pair_images: images need 3 channels, got {g.shape[1]}")
    if not sample or "/" in sample or sample in (".", ".."):
        raise InputError(f"write_pair_images: bad sample name {sample!r}")
    folder = Path(root) / sample
    for kind, imgs in (("gt", g), ("pred", p)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        arr = (imgs.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for k, a in enumerate(arr):
            with atomic_path(folder / kind / f"{k:06d}.png") as tmp:
                Image.fromarray(np.ascontiguousarray(a)).save(tmp, format="PNG")
    return folder
