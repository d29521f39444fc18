"""``vist3a view`` in headless Chromium: the page draws the splats, plays the fly-through and
reports a corrupt upload while the server keeps running (skips without Chromium/Playwright/viser)."""

from __future__ import annotations

import time

import numpy as np

from viewer_browser import (  # noqa: F401
    browser,
    canvas_rgb,
    close_notices,
    left_of_panel,
    new_page,
    open_viser,
    save_screenshot,
)
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import example_scene_path, load_scene


def _wait(cond, timeout: float = 60.0, every: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(every)
    return False


def _fractions(rgb: np.ndarray) -> tuple[float, float]:
    """Fractions of the canvas showing the example's orange sphere and blue cube."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    orange = (r > 180) & (g > 100) & (g < 190) & (b < 100)  # not the frusta (230, 90, 30)
    blue = (b > 170) & (r < 120) & (g < 160)
    return float(orange.mean()), float(blue.mean())


def test_view_page_draws_scene_plays_and_survives_corrupt_upload(browser, tmp_path) -> None:  # noqa: F811
    from vist3a.viewer.server import start_server
    from vist3a.viewer.view import SceneViewer

    g = load_scene(example_scene_path())
    cams = Cameras.orbit(8, radius=3.2, elevation_deg=25, arc_deg=90, width=640, height=480)
    server = start_server("127.0.0.1", 0)
    try:
        viewer = SceneViewer(server, g, cams, title="example", frames_per_view=6, fps=20)
        page = new_page(browser)
        open_viser(page, f"http://127.0.0.1:{server.get_port()}")
        page.get_by_text("Play fly-through", exact=True).wait_for()
        assert _wait(lambda: len(server.get_clients()) == 1, 30)
        close_notices(page)

        def canvas() -> np.ndarray:
            return left_of_panel(page, canvas_rgb(page), "Frame")

        # the splats are drawn: both objects of the example scene cover part of the canvas
        def objects_visible() -> bool:
            o, b = _fractions(canvas())
            return o > 0.003 and b > 0.003

        assert _wait(objects_visible, 90, 1.0), "the canvas does not show the example's sphere and cube"
        before = canvas()
        assert before.std() > 10.0
        save_screenshot(page, tmp_path / "view.png")

        # Play: the page's camera follows the trajectory (the slider advances, the picture changes)
        page.get_by_text("Play fly-through", exact=True).click()
        assert _wait(lambda: viewer.frame_slider.value >= 10, 60), "the fly-through did not advance"
        page.get_by_text("Stop", exact=True).click()
        assert _wait(lambda: not viewer.playing, 10)
        after = canvas()
        assert np.abs(after.astype(int) - before.astype(int)).mean() > 2.0, "the view did not move"

        # a corrupt upload: the reason shows in the page, the scene stays, the server keeps serving
        bad = tmp_path / "broken.ply"
        bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nend_header\n\x01")
        with page.expect_file_chooser() as fc:
            page.get_by_text("Open scene (.ply/.spz/.splat)", exact=True).click()
        fc.value.set_files(str(bad))
        page.get_by_text("could not open broken.ply", exact=False).first.wait_for(timeout=60_000)
        assert viewer.n_splats == len(g)
        good = tmp_path / "again.splat"
        from vist3a.gaussians.formats import save_scene

        save_scene(g, good)
        with page.expect_file_chooser() as fc:
            page.get_by_text("Open scene (.ply/.spz/.splat)", exact=True).click()
        fc.value.set_files(str(good))
        assert _wait(lambda: "orbit" in viewer.status, 60), viewer.status
        page.get_by_text("again.splat").first.wait_for(timeout=30_000)
    finally:
        server.stop()
