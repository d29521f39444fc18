"""A procedural scene: 1–4 primitives with named colours and sizes on a ground plane.

World frame: z up, the ground is the plane z = 0, lengths in world units (≈ metres). Every object
stands on the ground and may be rotated about the vertical axis (its ``yaw``). A scene is a pure
function of its seed (:func:`sample_scene` draws from a ``torch.Generator`` only).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from vist3a.errors import InputError
from vist3a.world.palette import COLOUR_BY_NAME, COLOURS, FLOOR_COLOURS, SHAPES, SIZES, SKIES, Floor

#: Cylinder radius and cone base radius as a fraction of the object's height.
CYLINDER_RADIUS = 0.36
CONE_RADIUS = 0.48


@dataclass(frozen=True)
class SceneObject:
    """One primitive standing on the ground.

    Attributes:
        shape: one of ``SHAPES``.
        colour: a name in ``COLOURS``.
        size: a key of ``SIZES`` ("small", "medium", "large").
        x, y: position of the object's base centre on the ground (world units).
        yaw: rotation about +z in radians (counter-clockwise seen from above).
    """

    shape: str
    colour: str
    size: str
    x: float
    y: float
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise InputError(f"unknown shape {self.shape!r}; choose one of {', '.join(SHAPES)}")
        if self.colour not in COLOUR_BY_NAME:
            raise InputError(f"unknown colour {self.colour!r}; choose one of {', '.join(COLOUR_BY_NAME)}")
        if self.size not in SIZES:
            raise InputError(f"unknown size {self.size!r}; choose one of {', '.join(SIZES)}")

    @property
    def height(self) -> float:
        """Height above the ground: a cube's side, a sphere's diameter, a cylinder's/cone's height."""
        return SIZES[self.size]

    @property
    def footprint_radius(self) -> float:
        """Radius of the smallest vertical cylinder about the base centre that holds the object."""
        h = self.height
        return {"cube": h / math.sqrt(2), "sphere": h / 2, "cylinder": CYLINDER_RADIUS * h, "cone": CONE_RADIUS * h}[
            self.shape
        ]

    @property
    def bounding_radius(self) -> float:
        """Radius of a sphere about :attr:`centre` that holds the object."""
        h = self.height
        return {
            "cube": h * math.sqrt(3) / 2,
            "sphere": h / 2,
            "cylinder": math.hypot(CYLINDER_RADIUS * h, h / 2),
            "cone": math.hypot(CONE_RADIUS * h, h / 2),
        }[self.shape]

    @property
    def centre(self) -> tuple[float, float, float]:
        return (self.x, self.y, self.height / 2)


@dataclass(frozen=True)
class Scene:
    """Objects, ground, sky and light.

    Attributes:
        objects: the primitives (no two share a colour, none interpenetrate).
        floor: the ground plane's look.
        sky: a key of ``SKIES``.
        light_dir: unit vector *towards* the directional light (z > 0).
        ambient: ambient strength; the directional light has strength ``1 - ambient`` (so a lit
            colour never exceeds its albedo and never clips).
        checker_size: side of a floor tile (world units) when the floor is checkered.
        seed: the seed the scene was drawn from (None when built by hand).
    """

    objects: tuple[SceneObject, ...]
    floor: Floor = field(default_factory=lambda: Floor("gray", FLOOR_COLOURS["gray"]))
    sky: str = "light gray"
    light_dir: tuple[float, float, float] = (0.4, 0.3, 0.866)
    ambient: float = 0.35
    checker_size: float = 0.5
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.objects:
            raise InputError("a scene needs at least one object")
        if self.sky not in SKIES:
            raise InputError(f"unknown sky {self.sky!r}; choose one of {', '.join(SKIES)}")
        n = math.sqrt(sum(v * v for v in self.light_dir))
        if n == 0 or self.light_dir[2] <= 0:
            raise InputError(f"light_dir must point upwards (z > 0), got {self.light_dir}")
        object.__setattr__(self, "light_dir", tuple(v / n for v in self.light_dir))
        if not 0.0 <= self.ambient <= 1.0:
            raise InputError(f"ambient must be in [0,1], got {self.ambient}")

    @property
    def centre(self) -> tuple[float, float, float]:
        """Mean of the object centres (where cameras look)."""
        m = len(self.objects)
        return tuple(sum(c[i] for c in (o.centre for o in self.objects)) / m for i in range(3))  # type: ignore[return-value]

    @property
    def radius(self) -> float:
        """Radius of a sphere about :attr:`centre` holding every object."""
        cx, cy, cz = self.centre
        return max(
            math.sqrt((o.centre[0] - cx) ** 2 + (o.centre[1] - cy) ** 2 + (o.centre[2] - cz) ** 2) + o.bounding_radius
            for o in self.objects
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objects"] = [asdict(o) for o in self.objects]
        return d


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _choice(gen: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=gen))


def sample_scene(gen: torch.Generator, max_objects: int = 4, seed: int | None = None) -> Scene:
    """Draw a scene from ``gen``: 1..``max_objects`` objects with distinct colours, no overlaps.

    Objects are placed one by one at random positions within a disk; a position is kept only if
    its footprint circle clears every placed object's by a gap (so nothing interpenetrates and
    nothing touches). The same generator state gives the same scene.
    """
    if not 1 <= max_objects <= len(COLOURS):
        raise InputError(f"max_objects must be in 1..{len(COLOURS)}, got {max_objects}")
    n = 1 + _choice(gen, max_objects)
    colours = torch.randperm(len(COLOURS), generator=gen)[:n].tolist()
    size_names = list(SIZES)
    objects: list[SceneObject] = []
    for k in range(n):
        shape = SHAPES[_choice(gen, len(SHAPES))]
        size = size_names[_choice(gen, len(size_names))]
        yaw = _uniform(gen, 0.0, math.pi / 2) if shape == "cube" else 0.0
        proto = SceneObject(shape, COLOURS[colours[k]].name, size, 0.0, 0.0, yaw)
        spread = 0.3 + 0.3 * n
        for _ in range(200):
            r = spread * math.sqrt(_uniform(gen, 0.0, 1.0))
            a = _uniform(gen, 0.0, 2 * math.pi)
            x, y = r * math.cos(a), r * math.sin(a)
            if all(
                math.hypot(x - o.x, y - o.y) > proto.footprint_radius + o.footprint_radius + 0.15 for o in objects
            ):
                break
        else:  # pragma: no cover - the disk grows with n, so this never happens in practice
            x, y = 3.0 * (k + 1), 0.0
        objects.append(SceneObject(shape, proto.colour, size, round(x, 4), round(y, 4), round(yaw, 4)))
    floor_name = list(FLOOR_COLOURS)[_choice(gen, len(FLOOR_COLOURS))]
    base = FLOOR_COLOURS[floor_name]
    checker = _choice(gen, 2) == 1
    rgb2 = tuple(min(1.0, c * 0.8 + 0.08) for c in base) if checker else None
    sky = list(SKIES)[_choice(gen, len(SKIES))]
    el = math.radians(_uniform(gen, 35.0, 70.0))
    az = _uniform(gen, 0.0, 2 * math.pi)
    light = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    return Scene(
        objects=tuple(objects),
        floor=Floor(floor_name, base, rgb2),  # type: ignore[arg-type]
        sky=sky,
        light_dir=light,
        ambient=round(_uniform(gen, 0.3, 0.42), 4),
        checker_size=round(_uniform(gen, 0.3, 0.7), 4),
        seed=seed,
    )
