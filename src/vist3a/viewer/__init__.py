"""Browser front ends built on viser (optional extra ``pip install 'vist3a[view]'``).

- :mod:`vist3a.viewer.scene`: Gaussians / Cameras → the arrays viser draws (no viser import).
- :mod:`vist3a.viewer.server`: starting a viser server on a checked host/port.
- :mod:`vist3a.viewer.view`: ``vist3a view`` — splats, camera frusta, fly-through playback.
- :mod:`vist3a.viewer.app`: ``vist3a app`` — prompt → generation → 3D view, video and downloads.
"""
