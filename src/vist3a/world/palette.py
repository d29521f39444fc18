"""The world's vocabulary: shapes, named colours, sizes, floors and skies.

Object colours are saturated and lie at distinct hues, so a judge can find an object by hue alone;
floors and skies are unsaturated (HSV saturation ≤ 0.25), so they never look like an object. Shading
multiplies a colour by a grey factor, which keeps its hue and saturation: only brightness changes.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone")


@dataclass(frozen=True)
class NamedColour:
    """A colour word and its linear RGB albedo in [0,1]."""

    name: str
    rgb: tuple[float, float, float]

    @property
    def hue_deg(self) -> float:
        return colorsys.rgb_to_hsv(*self.rgb)[0] * 360.0


def _hsv(h_deg: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h_deg / 360.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


# Eight object colours, hues at least 30° apart (closest pairs: red/orange, orange/yellow).
COLOURS: tuple[NamedColour, ...] = (
    NamedColour("red", _hsv(0, 0.85, 0.9)),
    NamedColour("orange", _hsv(30, 0.9, 0.95)),
    NamedColour("yellow", _hsv(60, 0.85, 0.9)),
    NamedColour("green", _hsv(125, 0.75, 0.75)),
    NamedColour("cyan", _hsv(185, 0.8, 0.85)),
    NamedColour("blue", _hsv(225, 0.8, 0.9)),
    NamedColour("purple", _hsv(275, 0.7, 0.8)),
    NamedColour("pink", _hsv(325, 0.6, 0.95)),
)
COLOUR_BY_NAME: dict[str, NamedColour] = {c.name: c for c in COLOURS}

# Size word -> object height in world units (a cube's side, a sphere's diameter, a cylinder's or
# cone's height). Consecutive sizes differ by a factor ≥ 1.6 so they stay apart in every view.
SIZES: dict[str, float] = {"small": 0.3, "medium": 0.5, "large": 0.8}


@dataclass(frozen=True)
class Floor:
    """A ground plane look: a base colour, optionally checkered with a second shade."""

    name: str
    rgb: tuple[float, float, float]
    rgb2: tuple[float, float, float] | None = None  # second checker colour, None = plain

    @property
    def phrase(self) -> str:
        return f"a checkered {self.name} floor" if self.rgb2 is not None else f"a {self.name} floor"


FLOOR_COLOURS: dict[str, tuple[float, float, float]] = {
    "gray": _hsv(0, 0.0, 0.55),
    "white": _hsv(40, 0.04, 0.85),
    "dark": _hsv(220, 0.08, 0.3),
    "beige": _hsv(38, 0.22, 0.75),
}

# Sky: zenith and horizon colours (unsaturated gradients).
SKIES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "pale blue": (_hsv(210, 0.22, 0.95), _hsv(210, 0.06, 0.98)),
    "light gray": (_hsv(0, 0.0, 0.8), _hsv(0, 0.0, 0.92)),
    "warm white": (_hsv(35, 0.12, 0.97), _hsv(35, 0.05, 0.99)),
    "dusk": (_hsv(250, 0.2, 0.55), _hsv(20, 0.15, 0.85)),
}

#: Saturation below which a pixel is floor or sky, never an object (objects have s ≥ 0.6).
MAX_BACKGROUND_SATURATION = 0.25
