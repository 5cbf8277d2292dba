"""keadm's errors: every failure names its cause and the fix.

``KeadmError`` is the root. The CLI prints ``error: <cause>`` and, on the next
line, ``fix: <fix>``, then exits with :attr:`KeadmError.exit_code`.
"""

from __future__ import annotations

__all__ = ["KeadmError", "PrecheckFailed"]


class KeadmError(Exception):
    """A keadm step failed.

    Attributes:
        cause: what went wrong, in the user's terms.
        fix: what to do about it.
        exit_code: the process exit status (1 unless a subclass says otherwise).
    """

    exit_code = 1

    def __init__(self, cause: str, fix: str = "") -> None:
        super().__init__(cause if not fix else f"{cause} (fix: {fix})")
        self.cause = cause
        self.fix = fix


class PrecheckFailed(KeadmError):
    """A check before any change refused the command; nothing was changed."""

    exit_code = 2
