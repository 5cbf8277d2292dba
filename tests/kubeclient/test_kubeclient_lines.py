"""Watch line assembly: lines split across chunks, several per chunk, and the cap."""

from __future__ import annotations

import time

import pytest

from kubeclient import WatchError
from kubeclient.lines import LineAssembler


def test_lines_across_and_within_chunks() -> None:
    a = LineAssembler(max_line=100)
    assert a.feed(b'{"a":') == []
    assert a.feed(b"1}\n{") == [b'{"a":1}']
    assert a.feed(b'"b":2}\n\n{"c":3}\n{"d"') == [b'{"b":2}', b"", b'{"c":3}']
    assert a.pending == 4
    assert a.feed(b":4}\n") == [b'{"d":4}']
    assert a.pending == 0


def test_a_multi_mib_line_in_small_chunks_is_joined_intact_in_linear_time() -> None:
    line = bytes(range(10)) * (16 * 1024 * 1024 // 10)  # no newline byte inside
    chunks = [line[i : i + 4096] for i in range(0, len(line), 4096)]
    a = LineAssembler(max_line=32 * 1024 * 1024)
    got: list[bytes] = []
    started = time.perf_counter()
    for chunk in chunks:
        got += a.feed(chunk)
    got += a.feed(b"\n")
    elapsed = time.perf_counter() - started
    assert got == [line]
    # joined once: ~0.02 s here; re-copying the buffer per chunk took ~15 s
    assert elapsed < 3.0, f"assembling 16 MiB took {elapsed:.1f}s"


def test_a_line_exactly_at_the_cap_passes() -> None:
    a = LineAssembler(max_line=10)
    assert a.feed(b"0123456789\n") == [b"0123456789"]
    assert a.feed(b"01234") == []
    assert a.feed(b"56789\n") == [b"0123456789"]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"0123456789a"],  # no newline yet
        [b"0123456789a\n"],  # the whole over-long line in one chunk
        [b"012345", b"6789a\n"],  # completed over the cap
    ],
)
def test_a_line_over_the_cap_fails_clearly(chunks: list[bytes]) -> None:
    a = LineAssembler(max_line=10)
    with pytest.raises(WatchError, match="watch line exceeds 10 bytes"):
        for chunk in chunks:
            a.feed(chunk)
