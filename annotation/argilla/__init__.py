"""The annotation loop on Argilla 2.8: dataset settings, record rendering, push / pull / progress.

- :mod:`.records`: field values (escaped prompt, inline ``<audio>`` players), the hidden A/B
  order, answers back to the original orientation (no SDK needed);
- :mod:`.settings`: the dataset's fields, questions, guidelines and task distribution;
- :mod:`.connection`: which server and key (arguments, ``ARGILLA_API_URL`` /
  ``ARGILLA_API_KEY``, or the embedded server);
- :mod:`.backend`: :class:`ArgillaBackend`, the :class:`annotation.backend.AnnotationBackend`.
"""

from __future__ import annotations

__all__ = ["ArgillaBackend", "Connection", "resolve"]


def __getattr__(name):
    if name == "ArgillaBackend":
        from annotation.argilla.backend import ArgillaBackend
        return ArgillaBackend
    if name in ("Connection", "resolve"):
        from annotation.argilla import connection
        return getattr(connection, name)
    raise AttributeError(name)
