"""The one error type users see.

Raised where user input is read (settings, names, paths, parameters, files on disk). The CLI
prints ``message`` and ``hint`` on one line each and exits with code 2; the API maps it to
``{"detail", "hint"}`` with ``status``. Bugs stay ``ValueError``/``RuntimeError`` and keep their
traceback.
"""

from __future__ import annotations


class ReidTraceError(Exception):
    """A problem with the user's input or environment, with a hint on what to do next."""

    def __init__(self, message: str, hint: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"
