"""Subcommands of the ``vist3a`` CLI, one module each (see ``vist3a.cli``)."""
