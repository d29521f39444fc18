"""Exceptions a user can act on.

Library code raises :class:`Vist3aError` (or a subclass) with a message that names the problem
(the file, the key, the shape); the CLI prints that message as one line and exits non-zero.
"""

from __future__ import annotations


class Vist3aError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(Vist3aError, ValueError):
    """Bad user input: a wrong shape, a non-finite value, a malformed file or field."""


class FormatError(InputError):
    """A file that does not follow the layout it claims (truncated, bad magic, wrong properties)."""


class CheckpointError(Vist3aError):
    """Weights that are missing, corrupt or do not match the model (names the keys)."""


class MissingWeightsError(CheckpointError, FileNotFoundError):
    """Weights that are not on this machine; the message says what to download and where to put it."""
