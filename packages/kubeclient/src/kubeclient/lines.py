"""Splitting a watch stream into lines, in linear time and with a size cap (no I/O).

A watch event is one JSON line, and one object may be many MiB arriving in
small chunks. Appending each chunk to a ``bytes`` buffer and re-splitting the
whole buffer copies it once per chunk (quadratic); this keeps the pieces of the
unfinished line in a list and joins them once, when its newline arrives.
"""

from __future__ import annotations

from kubeclient import errors

__all__ = ["LineAssembler"]


class LineAssembler:
    """Feed chunks, get the complete lines (without ``\\n``); a line over ``max_line`` fails."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines ``chunk`` completes; raises WatchError when a line exceeds the cap."""
        lines: list[bytes] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start:end]
            self._check(self._size + len(piece))
            if self._parts:
                self._parts.append(piece)
                lines.append(b"".join(self._parts))
                self._parts.clear()
                self._size = 0
            else:
                lines.append(piece)
            start = end + 1
        if start < len(chunk):
            rest = chunk[start:] if start else chunk
            self._check(self._size + len(rest))
            self._parts.append(rest)
            self._size += len(rest)
        return lines

    @property
    def pending(self) -> int:
        """Bytes of the unfinished line."""
        return self._size

    def _check(self, size: int) -> None:
        if size > self.max_line:
            raise errors.WatchError(
                f"watch line exceeds {self.max_line} bytes (at least {size} bytes received)"
            )
