"""``vist3a view``: a scene in the browser — splats, the trajectory's camera frusta, fly-through playback.

:class:`SceneViewer` owns a viser server's scene and a small control panel:

- **Play fly-through** / **Stop**: every open page's camera follows the (interpolated) trajectory;
- **Frame**: jump to one frame of the trajectory; **Show cameras**: toggle the frusta;
- **Open scene**: upload a ``.ply`` / ``.spz`` / ``.splat`` from the page. A corrupt or unknown
  file leaves the current scene in place and shows the reason in the page; the server keeps running.

Scenes without cameras get an orbit around them for the fly-through.
"""

from __future__ import annotations

import html
import logging
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from vist3a.errors import InputError, Vist3aError
from vist3a.gaussians.cameras import Cameras
from vist3a.gaussians.formats import FORMATS, load_scene
from vist3a.gaussians.gaussians import Gaussians
from vist3a.viewer.scene import (
    MAX_BROWSER_SPLATS,
    camera_poses,
    fly_through,
    frustum_scale,
    orbit_for,
    scene_up,
    splat_arrays,
    world_up,
)

log = logging.getLogger(__name__)

#: The largest scene file accepted from the page (bytes).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def load_scene_bytes(name: str, content: bytes) -> Gaussians:
    """Parse an uploaded scene: only the suffix of ``name`` is used (never as a path); the bytes go
    through a private temporary file. Raises :class:`InputError` / ``FormatError`` with the reason."""
    suffix = Path(str(name)).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"unknown scene file type {suffix or '(no suffix)'!r}; open a .ply, .spz or .splat file")
    if not content:
        raise InputError(f"{Path(name).name} is empty")
    if len(content) > MAX_UPLOAD_BYTES:
        raise InputError(f"{Path(name).name} is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
    with tempfile.TemporaryDirectory(prefix="vist3a-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(content)
        return load_scene(path)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class SceneViewer:
    """Shows one scene (and its cameras) on a viser server and drives the fly-through.

    Args:
        server: a running ``viser.ViserServer`` (see :func:`vist3a.viewer.server.start_server`).
        gaussians: the scene (activated, OpenCV axes). cameras: its trajectory, or None (an orbit is used).
        title: shown at the top of the panel. frames_per_view: fly-through frames between cameras.
        fps: playback rate. max_splats: browser budget (larger scenes are subsampled).
        allow_upload: show the "Open scene" upload button.
        client: a ``viser.ClientHandle`` to give one page its own panel and scene (default: shared).
    """

    def __init__(
        self,
        server: Any,
        gaussians: Gaussians | None = None,
        cameras: Cameras | None = None,
        title: str = "scene",
        frames_per_view: int = 15,
        fps: float = 30.0,
        max_splats: int = MAX_BROWSER_SPLATS,
        allow_upload: bool = True,
        client: Any = None,
    ) -> None:
        self.server = server
        self.client = client  # one page's own panel and scene (the app), or None = shared by all pages
        self.gui = client.gui if client is not None else server.gui
        self.scene = client.scene if client is not None else server.scene
        self.frames_per_view = frames_per_view
        self.max_splats = max_splats
        self._lock = threading.Lock()
        self._play_token = 0
        self._frustum_handles: list[Any] = []
        self._splat_handle: Any = None
        self.trajectory: Cameras | None = None
        self.cameras: Cameras | None = None
        self.n_splats = 0
        self._center: np.ndarray | None = None
        self.up: tuple[float, float, float] = (0.0, -1.0, 0.0)

        self._title = self.gui.add_markdown(f"**{title}**")
        self._status = self.gui.add_markdown("")
        self.play_button = self.gui.add_button("Play fly-through", icon=None)
        self.stop_button = self.gui.add_button("Stop")
        self.frame_slider = self.gui.add_slider("Frame", min=0, max=1, step=1, initial_value=0)
        self.fps_slider = self.gui.add_slider("Speed (fps)", min=1.0, max=60.0, step=1.0, initial_value=float(fps))
        self.show_cameras = self.gui.add_checkbox("Show cameras", initial_value=True)
        self.upload = (
            self.gui.add_upload_button("Open scene (.ply/.spz/.splat)", mime_type="*/*") if allow_upload else None
        )
        self.play_button.on_click(lambda _e: self.play())
        self.stop_button.on_click(lambda _e: self.stop())
        self.frame_slider.on_update(lambda _e: self._on_frame_slider())
        self.show_cameras.on_update(lambda _e: self._set_frusta_visible(self.show_cameras.value))
        if self.upload is not None:
            self.upload.on_upload(lambda _e: self._on_upload())
        self._slider_from_player = False
        if gaussians is not None:
            self.show(gaussians, cameras, title=title)

    # ------------------------------------------------------------------ scene
    def show(self, gaussians: Gaussians, cameras: Cameras | None = None, title: str | None = None) -> None:
        """Replace what is shown by ``gaussians`` (+ ``cameras``; None = an orbit around the scene)."""
        self.stop()
        arrays = splat_arrays(gaussians, self.max_splats)
        has_cams = cameras is not None and len(cameras) > 0
        traj_keys = cameras if has_cams else orbit_for(gaussians)
        with self._lock:
            if self._splat_handle is not None:
                self._splat_handle.remove()
            for h in self._frustum_handles:
                h.remove()
            self._frustum_handles = []
            self.up = world_up(cameras) if has_cams else scene_up(gaussians)
            self.scene.set_up_direction(self.up)
            self._splat_handle = self.scene.add_gaussian_splats(
                "/scene/splats", arrays.centers, arrays.covariances, arrays.rgbs, arrays.opacities
            )
            self.cameras = cameras
            if cameras is not None and len(cameras) > 0:
                scale = frustum_scale(cameras, arrays)
                for i, pose in enumerate(camera_poses(cameras)):
                    self._frustum_handles.append(
                        self.scene.add_camera_frustum(
                            f"/cameras/cam_{i:03d}", fov=pose.fov, aspect=pose.aspect, scale=scale,
                            thickness=0.04 * scale, color=(230, 90, 30), wxyz=pose.wxyz, position=pose.position,
                            visible=bool(self.show_cameras.value),
                        )
                    )  # fmt: skip
            self.trajectory = fly_through(traj_keys, self.frames_per_view) if has_cams else traj_keys
            self.n_splats = len(arrays)
            self._center = np.median(arrays.centers, axis=0).astype(np.float64)
        n_frames = len(self.trajectory)
        self.frame_slider.max = max(n_frames - 1, 1)
        self.frame_slider.value = 0
        self.overview()
        if title is not None:
            self._title.content = f"**{title}**"
        cams = f"{len(cameras)} cameras" if cameras is not None else "no cameras (fly-through = orbit)"
        self.set_status(f"{self.n_splats:,} splats, {cams}, {n_frames} fly-through frames")

    def set_status(self, text: str, error: bool = False) -> None:
        self._status.content = f"**Error:** {html.escape(text)}" if error else text

    @property
    def status(self) -> str:
        return str(self._status.content)

    def _set_frusta_visible(self, visible: bool) -> None:
        for h in self._frustum_handles:
            h.visible = bool(visible)

    def overview_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """``(position, look_at)`` of a view that shows the scene and the trajectory: the first camera
        pulled back (and up) by half its distance to the scene's centre, looking at that centre."""
        assert self.trajectory is not None
        c2w = self.trajectory.c2w[0].detach().double().cpu().numpy()
        pos, fwd = c2w[:3, 3], c2w[:3, 2]
        target = self._center if self._center is not None else pos + fwd
        d = float(np.linalg.norm(target - pos)) or 1.0
        return pos - 0.5 * d * fwd + 0.25 * d * np.asarray(self.up), target

    def overview(self) -> None:
        """Move every page's camera (and a new page's first camera) to :meth:`overview_pose`."""
        if self.trajectory is None:
            return
        pos, target = self.overview_pose()
        fov = camera_poses(self.trajectory[0:1])[0].fov
        if self.client is None and hasattr(self.server, "initial_camera"):
            ic = self.server.initial_camera
            ic.position, ic.look_at, ic.up, ic.fov = tuple(pos), tuple(target), self.up, fov
        for client in self._clients():
            try:
                with client.atomic():
                    client.camera.up_direction = np.asarray(self.up)
                    client.camera.position = pos
                    client.camera.look_at = target
                    client.camera.fov = fov
            except Exception:  # pragma: no cover - a client that went away
                pass

    # ------------------------------------------------------------------ uploads
    def _on_upload(self) -> None:
        assert self.upload is not None
        f = self.upload.value
        self.open_bytes(f.name, f.content)

    def open_bytes(self, name: str, content: bytes) -> bool:
        """Show a scene file's bytes (as uploaded from the page). On a bad file the current scene
        stays, the reason goes to the panel and a notification, and False is returned."""
        name = Path(str(name)).name or "upload"
        try:
            g = load_scene_bytes(name, content)
            self.show(g, None, title=name)
            return True
        except Vist3aError as exc:
            msg = f"could not open {name}: {_one_line(exc)}"
        except Exception as exc:  # keep serving whatever a file does to a parser
            msg = f"could not open {name}: {type(exc).__name__}: {_one_line(exc)}"
        log.warning(msg)
        self.set_status(msg, error=True)
        self._notify("Could not open the scene", msg)
        return False

    def _notify(self, title: str, body: str) -> None:
        for client in self._clients():
            try:
                client.add_notification(title, body, auto_close_seconds=10.0, color="red")
            except Exception:  # pragma: no cover - a client that went away
                pass

    # ------------------------------------------------------------------ fly-through
    def _clients(self) -> list[Any]:
        if self.client is not None:
            return [self.client]
        return list(self.server.get_clients().values())

    def go_to_frame(self, i: int, all_clients: bool = True) -> None:
        """Put every connected page's camera at fly-through frame ``i``."""
        traj = self.trajectory
        if traj is None or len(traj) == 0:
            return
        i = int(min(max(i, 0), len(traj) - 1))
        pose = camera_poses(traj[i : i + 1])[0]
        for client in self._clients() if all_clients else []:
            try:
                with client.atomic():
                    client.camera.wxyz = np.asarray(pose.wxyz)
                    client.camera.position = np.asarray(pose.position)
                    client.camera.fov = pose.fov
            except Exception:  # pragma: no cover - a client that went away
                pass

    def _on_frame_slider(self) -> None:
        if self._slider_from_player:
            return
        self.stop()
        self.go_to_frame(int(self.frame_slider.value))

    def play(self) -> threading.Thread:
        """Start the fly-through (from the slider's frame) in a background thread; returns it."""
        with self._lock:
            self._play_token += 1
            token = self._play_token
        thread = threading.Thread(target=self._play_loop, args=(token,), daemon=True, name="vist3a-fly-through")
        thread.start()
        return thread

    def stop(self) -> None:
        with self._lock:
            self._play_token += 1

    @property
    def playing(self) -> bool:
        return getattr(self, "_playing_token", None) == self._play_token

    def _play_loop(self, token: int) -> None:
        traj = self.trajectory
        if traj is None:
            return
        self._playing_token = token
        self._set_frusta_visible(False)  # the camera flies through them
        start = int(self.frame_slider.value)
        start = 0 if start >= len(traj) - 1 else start
        for i in range(start, len(traj)):
            if token != self._play_token:
                break
            t0 = time.perf_counter()
            self.go_to_frame(i)
            self._slider_from_player = True
            try:
                self.frame_slider.value = i
            finally:
                self._slider_from_player = False
            fps = float(self.fps_slider.value) if math.isfinite(float(self.fps_slider.value)) else 30.0
            time.sleep(max(0.0, 1.0 / max(fps, 1.0) - (time.perf_counter() - t0)))
        if self._playing_token == token:  # not superseded by a newer play
            self._set_frusta_visible(bool(self.show_cameras.value))
            self._playing_token = None
