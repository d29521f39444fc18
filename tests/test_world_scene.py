"""Scenes, trajectories and captions: invariants and known answers."""

from __future__ import annotations

import math

import pytest
import torch

from vist3a.errors import InputError
from vist3a.world.captions import StructuredCaption, describe, object_layout, phrasings
from vist3a.world.palette import COLOURS, MAX_BACKGROUND_SATURATION, SHAPES, SKIES
from vist3a.world.sample import make_sample, scene_seed
from vist3a.world.scene import Scene, SceneObject, sample_scene
from vist3a.world.trajectory import MOTIONS, sample_trajectory


def test_palette_hues_are_distinct_and_backgrounds_unsaturated():
    assert len(COLOURS) >= 8 and len({c.name for c in COLOURS}) == len(COLOURS)
    hues = [c.hue_deg for c in COLOURS]
    for i in range(len(hues)):
        for j in range(i + 1, len(hues)):
            d = abs(hues[i] - hues[j])
            assert min(d, 360 - d) >= 25, (COLOURS[i].name, COLOURS[j].name)
    import colorsys

    for zen, hor in SKIES.values():
        for c in (zen, hor):
            assert colorsys.rgb_to_hsv(*c)[1] <= MAX_BACKGROUND_SATURATION
    assert set(SHAPES) >= {"cube", "sphere", "cylinder", "cone"}


def test_sampled_scenes_are_valid_and_varied():
    shapes, colours, counts, sizes = set(), set(), set(), set()
    for s in range(150):
        scene = sample_scene(torch.Generator().manual_seed(s))
        objs = scene.objects
        counts.add(len(objs))
        assert 1 <= len(objs) <= 4
        assert len({o.colour for o in objs}) == len(objs)  # distinct colours within a scene
        for i, a in enumerate(objs):
            shapes.add(a.shape)
            colours.add(a.colour)
            sizes.add(a.size)
            for b in objs[i + 1 :]:  # no interpenetration: footprints are disjoint
                assert math.hypot(a.x - b.x, a.y - b.y) > a.footprint_radius + b.footprint_radius
    assert counts == {1, 2, 3, 4} and shapes == set(SHAPES) and len(colours) == len(COLOURS) and len(sizes) == 3


def test_same_seed_same_sample_and_seeds_are_mixed():
    a, b = make_sample(5, seed=11, frames=4, size=48), make_sample(5, seed=11, frames=4, size=48)
    assert a.scene == b.scene and a.texts == b.texts
    torch.testing.assert_close(a.cameras.c2w, b.cameras.c2w, rtol=0, atol=0)
    assert torch.equal(a.render().rgb, b.render().rgb)
    c = make_sample(5, seed=12, frames=4, size=48)
    assert c.scene != a.scene
    assert len({scene_seed(0, i) for i in range(1000)}) == 1000


def test_first_view_shows_every_object():
    for i in range(6):
        s = make_sample(i, seed=3, frames=2, size=96)
        ids = s.render().ids[0]
        for k in range(len(s.scene.objects)):
            assert (ids == k + 1).sum() >= 20, (i, k)


def _moved_right(traj) -> float:
    c = traj.cameras
    right0 = c.c2w[0, :3, 0]
    return float((c.centers[-1] - c.centers[0]) @ right0)


@pytest.mark.parametrize("motion", MOTIONS)
def test_trajectory_motion_matches_its_phrase(motion):
    scene = Scene((SceneObject("cube", "red", "medium", 0.0, 0.0),))
    for s in range(4):
        traj = sample_trajectory(scene, torch.Generator().manual_seed(s), 9, 64, 64, motion=motion)
        c = traj.cameras
        assert len(c) == 9 and traj.motion == motion
        target = torch.tensor(scene.centre)
        dist = (c.centers - target).norm(dim=-1)
        if motion in ("arc", "truck"):
            side = "right" if _moved_right(traj) > 0 else "left"
            assert f"to the {side}" in traj.phrase
        elif motion == "orbit":
            # A full circle: first and last cameras are neighbours, and the mean position is the target.
            assert torch.allclose(c.centers[:, :2].mean(0), target[:2], atol=0.35 * float(dist[0]))
            d1 = c.centers[1] - c.centers[0]
            right = "counterclockwise" in traj.phrase
            assert (float(d1 @ c.c2w[0, :3, 0]) > 0) == right
        elif motion == "dolly":
            assert (float(dist[-1]) < float(dist[0])) == ("in" in traj.phrase.split())
        elif motion == "pan":
            assert torch.allclose(c.centers, c.centers[:1].expand_as(c.centers))
            turned_right = float(c.c2w[-1, :3, 2] @ c.c2w[0, :3, 0]) > 0
            assert f"to the {'right' if turned_right else 'left'}" in traj.phrase
        else:  # rise
            assert float(c.centers[-1, 2]) > float(c.centers[0, 2])


def test_relations_follow_the_first_camera():
    # Camera on −y looking at +y: world +x is image right, nearer the camera (smaller y) is in front.
    from vist3a.gaussians.cameras import Cameras, look_at

    c2w = look_at(torch.tensor([[0.0, -5.0, 2.0]]), torch.tensor([[0.0, 0.0, 0.3]]), torch.tensor([0.0, 0.0, 1.0]))
    cam = Cameras(c2w, torch.tensor([[[60.0, 0, 64], [0, 60.0, 64], [0, 0, 1]]]), 128, 128)
    scene = Scene(
        (
            SceneObject("cube", "red", "large", -1.2, 0.0),
            SceneObject("sphere", "blue", "small", 1.2, 0.0),
            SceneObject("cone", "green", "medium", 1.2, 1.6),
        )
    )
    u, z = object_layout(scene, cam)
    assert float(u[0]) < 64 < float(u[1])
    cap = describe(scene, cam, "the camera pans to the left")
    assert (0, "left of", 1) in cap.relations
    assert (1, "in front of", 2) in cap.relations
    texts = phrasings(cap)
    assert texts["short"].endswith("on a gray floor")
    assert texts["short"].startswith("a large red cube") and "the blue sphere is in front of the green cone" in texts["long"]
    assert "The camera pans to the left." in texts["long"]
    assert StructuredCaption.from_dict(cap.to_dict()) == cap


def test_two_object_caption_reads_naturally():
    s = next(make_sample(i, seed=0, frames=1, size=64) for i in range(50) if len(make_sample(i, 0, 1, 64).caption.relations) == 1 and len(make_sample(i, 0, 1, 64).scene.objects) == 2)
    i, rel, j = s.caption.relations[0]
    a, b = s.caption.objects[i], s.caption.objects[j]
    assert s.texts["short"].startswith(f"a {a.size} {a.colour} {a.shape} ") or s.texts["short"].startswith(f"an {a.size}")
    assert f"{b.colour} {b.shape} on a" in s.texts["short"]


def test_bad_scene_input_is_rejected():
    with pytest.raises(InputError, match="shape"):
        SceneObject("torus", "red", "large", 0, 0)
    with pytest.raises(InputError, match="colour"):
        SceneObject("cube", "chartreuse", "large", 0, 0)
    with pytest.raises(InputError, match="at least one object"):
        Scene(())
    with pytest.raises(InputError, match="malformed relation"):
        StructuredCaption.from_dict({"objects": [{"shape": "cube", "colour": "red", "size": "large"}], "relations": [[0, "above", 1]]})
    with pytest.raises(InputError, match="motion"):
        sample_trajectory(Scene((SceneObject("cube", "red", "large", 0, 0),)), torch.Generator(), 3, 32, 32, motion="zoom")


def _stated(c, style: str):
    """What a phrasing style states of a structured caption: objects by (colour, shape, size), relations by the
    objects' names (phrasings reorder objects), floor. 'short' states the relation only for two objects; 'camera'
    states none."""
    names = [o.colour + " " + o.shape for o in c.objects]
    says_rel = style in ("long", "list") or (style == "short" and len(c.objects) == 2 and len(c.relations) == 1)
    rels = {(names[i], r, names[j]) for i, r, j in c.relations} if says_rel else set()
    return {(o.colour, o.shape, o.size) for o in c.objects}, rels, c.floor, c.checkered


def test_parse_caption_inverts_every_phrasing_of_the_world():
    """parse_caption(text) recovers what each of the world's phrasings states, for 200 scenes of two sets."""
    from vist3a.world.captions import parse_caption

    n = 0
    for seed in (3, 7919):
        for i in range(100):
            s = make_sample(i, seed=seed, frames=5, size=32)
            for style, text in s.texts.items():
                assert _stated(parse_caption(text), "long") == _stated(s.caption, style), (style, text)
                n += 1
    assert n >= 600


def test_parse_caption_reads_free_prompts():
    from vist3a.world.captions import CaptionObject, parse_caption

    c = parse_caption("A red cube to the LEFT of a small blue sphere")
    assert c.objects == [CaptionObject("cube", "red", ""), CaptionObject("sphere", "blue", "small")]
    assert c.relations == [(0, "left of", 1)] and c.floor == "gray" and not c.checkered
    c = parse_caption("two yellow cones; the large yellow cone is behind the pink cylinder, on a checkered dark floor")
    assert c.objects == [CaptionObject("cone", "yellow", "large"), CaptionObject("cylinder", "pink", "")]
    assert c.relations == [(0, "behind", 1)] and (c.floor, c.checkered) == ("dark", True)
    assert parse_caption("a teapot on a wooden table") is None and parse_caption("") is None
