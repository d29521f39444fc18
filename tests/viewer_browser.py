"""Helpers for the browser tests of ``vist3a view`` / ``vist3a app`` (headless Chromium via Playwright).

The tests skip (with the reason) when Playwright's Python package, a Chromium binary or viser is
missing. Chromium: ``$VIST3A_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH
(Debian's package; ``scripts/ci/install_browser.sh`` installs it).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

#: Flags for a root, GPU-less, offline machine; WebGL through SwiftShader.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def find_chromium() -> str | None:
    env = os.environ.get("VIST3A_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``), or a skip saying what is missing."""
    pytest.importorskip("viser", reason="viser is not installed (pip install 'vist3a[view]')")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set VIST3A_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(
                executable_path=exe, args=CHROMIUM_ARGS, headless=True  # Playwright gives it a fresh profile
            )
        except Exception as exc:  # a broken install
            pytest.skip(f"Chromium at {exe} does not start under Playwright: {str(exc).splitlines()[0]}")
        try:
            yield b
        finally:
            b.close()


def new_page(browser: object, width: int = 880, height: int = 600) -> object:
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)  # type: ignore[attr-defined]
    ctx.set_default_timeout(60_000)
    return ctx.new_page()


def open_viser(page: object, url: str) -> None:
    """Load a viser page and wait for its 3D canvas and websocket connection."""
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector("canvas", timeout=60_000)  # type: ignore[attr-defined]


def input_of(page: object, label: str) -> object:
    """The ``<input>`` of a viser GUI control by its label (viser's labels are not linked with ``for``)."""
    import re

    row = page.locator("div.mantine-Flex-root", has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))  # type: ignore[attr-defined]
    return row.last.locator("input:not([type=hidden])").first


def type_into(field: object, control: object, value: object, wait_s: float = 30.0) -> None:
    """Type ``value`` into a page's input and wait until the server's ``control`` holds it.

    viser's page sends GUI updates through one 50 ms throttle shared by every control, keeping only
    the latest message of a window: a second control edited (or a button pressed) inside the same
    window drops the first one's update. So each field is typed and seen on the server before the
    next action, and an update that still went missing is typed again (cleared first, since the
    page sends nothing for an unchanged value).
    """
    text = str(value)
    end = time.monotonic() + wait_s
    while True:
        field.fill(text)  # type: ignore[attr-defined]
        retype = time.monotonic() + 5.0
        while control.value != value and time.monotonic() < min(retype, end):  # type: ignore[attr-defined]
            time.sleep(0.05)
        if control.value == value or time.monotonic() >= end:  # type: ignore[attr-defined]
            break
        field.fill("")  # type: ignore[attr-defined]
        time.sleep(0.2)  # past the throttle window, so the cleared value is not the one kept
    assert control.value == value, f"the typed value did not reach the server ({str(control.value)[:40]!r})"  # type: ignore[attr-defined]


def canvas_rgb(page: object) -> np.ndarray:
    """Screenshot of the 3D canvas as ``[H, W, 3]`` uint8."""
    from PIL import Image

    png = page.locator("canvas").first.screenshot(timeout=120_000)  # type: ignore[attr-defined]
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def close_notices(page: object) -> None:
    """Close viser's notifications (the "software WebGL" notice lies over the canvas)."""
    close = page.locator("button.mantine-Notification-closeButton")  # type: ignore[attr-defined]
    for i in reversed(range(close.count())):
        try:
            close.nth(i).click(timeout=5_000)
        except Exception:  # a notice that already went away
            pass
    page.wait_for_timeout(500)  # type: ignore[attr-defined]


def left_of_panel(page: object, rgb: np.ndarray, anchor: str) -> np.ndarray:
    """The part of a canvas screenshot left of the control panel (found by a text inside it), above
    the axes gizmo in the bottom-left corner."""
    box = page.get_by_text(anchor, exact=True).first.bounding_box()  # type: ignore[attr-defined]
    x = int(box["x"]) - 30 if box else rgb.shape[1] // 2
    return rgb[: max(rgb.shape[0] - 80, 1), : max(x, 1)]


def save_screenshot(page: object, path: Path) -> None:
    """A screenshot of the page, without notices."""
    close_notices(page)
    page.screenshot(path=str(path), timeout=120_000)  # type: ignore[attr-defined]
    keep = os.environ.get("VIST3A_SCREENSHOTS")
    if keep:  # VIST3A_SCREENSHOTS=docs/img keeps a copy (how docs/img/*.png were made)
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
