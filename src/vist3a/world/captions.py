"""Captions generated from a scene: a structured form (for judging) and several phrasings (for training).

Spatial relations are read from the first camera: "left of"/"right of" by the objects' horizontal
image positions, "in front of"/"behind" by their depth. A relation is stated only when it is clear
(well above the thresholds below), so a judge can verify it from the first rendered view.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

import torch

from vist3a.errors import InputError
from vist3a.gaussians.cameras import Cameras
from vist3a.world.palette import COLOURS, FLOOR_COLOURS, SHAPES, SIZES
from vist3a.world.scene import Scene

RELATIONS: tuple[str, ...] = ("left of", "right of", "in front of", "behind")
INVERSE = {"left of": "right of", "right of": "left of", "in front of": "behind", "behind": "in front of"}
#: A left/right relation needs the centres ≥ this fraction of the image width apart.
MIN_DU = 0.12
#: An in-front/behind relation needs the base centres ≥ this far apart in depth (world units).
MIN_DZ = 0.7
_PHRASE = {"left of": "to the left of", "right of": "to the right of", "in front of": "in front of", "behind": "behind"}
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


@dataclass(frozen=True)
class CaptionObject:
    shape: str
    colour: str
    size: str

    @property
    def full(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"

    @property
    def ref(self) -> str:
        """How a later clause names it (colours are unique within a scene)."""
        return f"{self.colour} {self.shape}"


@dataclass
class StructuredCaption:
    """What a caption says, in a form a judge can check.

    Attributes:
        objects: the objects (shape, colour, size) in caption order.
        relations: ``(i, rel, j)``: object i is ``rel`` object j, rel in ``RELATIONS``, from the
            first camera.
        floor: the floor's colour name; ``checkered`` whether it is a checker pattern.
        camera: the camera-motion phrase.
    """

    objects: list[CaptionObject]
    relations: list[tuple[int, str, int]] = field(default_factory=list)
    floor: str = "gray"
    checkered: bool = False
    camera: str = ""

    def to_dict(self) -> dict:
        return {
            "objects": [asdict(o) for o in self.objects],
            "relations": [list(r) for r in self.relations],
            "floor": self.floor,
            "checkered": self.checkered,
            "camera": self.camera,
        }

    @classmethod
    def from_dict(cls, d: dict) -> StructuredCaption:
        try:
            objs = [CaptionObject(o["shape"], o["colour"], o["size"]) for o in d["objects"]]
            rels = [(int(i), str(r), int(j)) for i, r, j in d.get("relations", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed structured caption: {exc}") from exc
        for i, r, j in rels:
            if r not in RELATIONS or not (0 <= i < len(objs) and 0 <= j < len(objs)):
                raise InputError(f"malformed relation {(i, r, j)} for {len(objs)} objects")
        return cls(objs, rels, d.get("floor", "gray"), bool(d.get("checkered", False)), d.get("camera", ""))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def object_layout(scene: Scene, camera: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Each object's base centre seen from ``camera`` (first of the set): pixel u ``[M]`` and depth ``[M]``."""
    w2c = camera.w2c[0].double()
    base = torch.tensor([[o.x, o.y, 0.0, 1.0] for o in scene.objects], dtype=torch.float64)
    centre = torch.tensor([[o.centre[0], o.centre[1], o.centre[2], 1.0] for o in scene.objects], dtype=torch.float64)
    pc = (w2c @ centre.T).T[:, :3]
    pb = (w2c @ base.T).T[:, :3]
    k = camera.K[0].double()
    u = k[0, 0] * pc[:, 0] / pc[:, 2] + k[0, 2]
    return u, pb[:, 2]


def spatial_relations(scene: Scene, camera: Cameras) -> list[tuple[int, str, int, float]]:
    """Every clear pairwise relation ``(i, rel, j, strength)`` with i < j, seen from ``camera[0]``."""
    u, z = object_layout(scene, camera)
    out = []
    m = len(scene.objects)
    for i in range(m):
        for j in range(i + 1, m):
            du = float(u[j] - u[i]) / camera.width  # > 0: j is right of i
            dz = float(z[i] - z[j])  # > 0: i is farther, i.e. behind j
            sh, sd = abs(du) / MIN_DU, abs(dz) / MIN_DZ
            if max(sh, sd) < 1.0 or min(sh, sd) > 0.7 * max(sh, sd):
                continue  # unclear, or both axes about equally strong (a diagonal)
            if sh >= sd:
                out.append((i, "left of" if du > 0 else "right of", j, sh))
            else:
                out.append((i, "behind" if dz > 0 else "in front of", j, sd))
    return out


def describe(scene: Scene, camera: Cameras, camera_phrase: str = "") -> StructuredCaption:
    """The structured caption of ``scene`` seen from ``camera[0]``.

    Relations form a forest over the objects (at most m−1), chosen strongest first, so every object
    is tied to the others where a clear relation exists.
    """
    objs = [CaptionObject(o.shape, o.colour, o.size) for o in scene.objects]
    rels = sorted(spatial_relations(scene, camera), key=lambda r: -r[3])
    parent = list(range(len(objs)))

    def root(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    chosen: list[tuple[int, str, int]] = []
    for i, rel, j, _ in rels:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[ri] = rj
            chosen.append((i, rel, j))
    chosen.sort()
    return StructuredCaption(objs, chosen, scene.floor.name, scene.floor.rgb2 is not None, camera_phrase)


def _floor_phrase(c: StructuredCaption) -> str:
    return f"a checkered {c.floor} floor" if c.checkered else f"a {c.floor} floor"


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _a(o: CaptionObject) -> str:
    return f"{_article(o.full)} {o.full}"


def phrasings(c: StructuredCaption) -> dict[str, str]:
    """Several captions of one structured caption: ``{style: text}``.

    Styles: ``short`` (objects, and the relation when there are two), ``long`` (objects, every
    relation, floor, camera), ``list`` (a counted inventory), ``camera`` (motion first).
    """
    objs = c.objects
    floor = _floor_phrase(c)
    if len(objs) == 2 and len(c.relations) == 1:
        i, rel, j = c.relations[0]
        short = f"{_a(objs[i])} {_PHRASE[rel]} {_a(objs[j])} on {floor}"
    else:
        short = f"{_join([_a(o) for o in objs])} on {floor}"
    rel_text = [f"the {objs[i].ref} is {_PHRASE[r]} the {objs[j].ref}" for i, r, j in c.relations]
    long = short[0].upper() + short[1:] + "."
    if rel_text and not (len(objs) == 2 and len(c.relations) == 1):
        s = _join(rel_text)
        long += " " + s[0].upper() + s[1:] + "."
    if c.camera:
        long += " " + c.camera[0].upper() + c.camera[1:] + "."
    n = len(objs)
    inventory = f"{_NUMBERS.get(n, str(n))} object{'s' if n > 1 else ''} on {floor}: " + _join([_a(o) for o in objs])
    if rel_text:
        inventory += "; " + "; ".join(rel_text)
    out = {"short": short, "long": long, "list": inventory}
    if c.camera:
        out["camera"] = f"{c.camera}, showing {_join([_a(o) for o in objs])} on {floor}"
    return out


# ---------------------------------------------------------------------------------------------- parsing
_REL_WORDS = {"to the left of": "left of", "to the right of": "right of", "left of": "left of",
              "right of": "right of", "in front of": "in front of", "behind": "behind"}  # fmt: skip
#: ``[size] colour shape`` (plural allowed), a relation phrase (longest first), a ``[checkered] colour floor``.
_MENTION = re.compile(rf"\b(?:({'|'.join(SIZES)})\s+)?({'|'.join(c.name for c in COLOURS)})\s+({'|'.join(SHAPES)})s?\b")
_RELATION = re.compile(rf"\b({'|'.join(sorted(map(re.escape, _REL_WORDS), key=len, reverse=True))})\b")
_FLOOR = re.compile(rf"\b(checkered\s+)?({'|'.join(FLOOR_COLOURS)})\s+floor\b")


def parse_caption(text: str) -> StructuredCaption | None:
    """The structured caption a prompt states in the world's vocabulary, or None when it names no object.

    The inverse of :func:`phrasings` for every style (objects, relations, floor; not the camera phrase), and
    lenient with free prompts such as "a red cube to the left of a small blue sphere": an object is a
    ``[size] colour shape`` mention (a size not stated is ``""``), later mentions of the same colour and shape
    name the same object, and a relation word (``to the left of``, ``right of``, ``in front of``, ``behind``)
    ties the closest mention before it to the first one after it. Used to score candidates against their
    caption (``select="world"``), never to judge.
    """
    if not isinstance(text, str):
        return None
    low = " ".join(text.lower().split())
    objs: list[CaptionObject] = []
    index: dict[tuple[str, str], int] = {}
    spans: list[tuple[int, int, int]] = []  # (start, end, object index) of each mention
    for m in _MENTION.finditer(low):
        size, colour, shape = m.group(1) or "", m.group(2), m.group(3)
        k = index.get((colour, shape))
        if k is None:
            k = index[(colour, shape)] = len(objs)
            objs.append(CaptionObject(shape, colour, size))
        elif size and not objs[k].size:
            objs[k] = CaptionObject(shape, colour, size)
        spans.append((m.start(), m.end(), k))
    if not objs:
        return None
    rels: list[tuple[int, str, int]] = []
    for m in _RELATION.finditer(low):
        before = [k for s, e, k in spans if e <= m.start()]
        after = [k for s, e, k in spans if s >= m.end()]
        if before and after and before[-1] != after[0]:
            r = (before[-1], _REL_WORDS[m.group(1)], after[0])
            if r not in rels:
                rels.append(r)
    floor = _FLOOR.search(low)
    return StructuredCaption(objs, sorted(rels), floor.group(2) if floor else "gray", bool(floor and floor.group(1)))

