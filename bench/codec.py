"""Benchmark ``codec``: beehive codec encode/decode throughput on real frames.

The corpus is every frame of the KubeEdge captures (tests/data/captures), as
the bytes a WebSocket frame carries (our encoding of the decoded frame, which
is byte-compatible with Go's). The loop cycles over the corpus in capture
order, so the mix of sizes is the real one (keepalives of 210 bytes to pod
updates of 5.6 KB).

There is no codec target in design.md; the target here is derived from the
delivery target: 10,000 pods delivered and acked within a second needs one
encode per pod and one decode per ack, so each direction must sustain at
least 10,000 messages/s on one core, with room for everything else.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from beehive import codec
from beehive.message import Message
from bench import REPO, Result

__all__ = ["NAME", "load_frames", "run"]

NAME = "codec"
OPTIONS: frozenset[str] = frozenset()
TARGET_PER_S = 10_000
CAPTURES = REPO / "tests" / "data" / "captures"


def load_frames(directory: Path = CAPTURES) -> list[bytes]:
    """Every message frame of the captures, encoded as it travels on the wire."""
    frames: list[bytes] = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if not record or record.get("dir") == "upgrade" or "frame" not in record:
                continue
            frames.append(codec.encode(codec.decode_obj(record["frame"])))
    if not frames:
        raise RuntimeError(f"no capture frames under {directory}")
    return frames


def _throughput(rounds: int, frames: list[bytes], messages: list[Message]) -> dict[str, float]:
    total_bytes = sum(len(f) for f in frames)
    count = rounds * len(frames)
    start = time.perf_counter()
    for _ in range(rounds):
        for data in frames:
            codec.decode(data)
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(rounds):
        for msg in messages:
            codec.encode(msg)
    encode_s = time.perf_counter() - start
    return {
        "frames in corpus": len(frames),
        "mean frame bytes": total_bytes / len(frames),
        "messages per direction": count,
        "decode msgs/s": count / decode_s,
        "decode MB/s": rounds * total_bytes / decode_s / 1e6,
        "encode msgs/s": count / encode_s,
        "encode MB/s": rounds * total_bytes / encode_s / 1e6,
    }


def run(*, quick: bool = False) -> list[Result]:
    frames = load_frames()
    messages = [codec.decode(f) for f in frames]
    # Warm up (imports, regex caches), then measure a bounded number of rounds:
    # about 140 frames per round, 10 s at most on a slow machine.
    _throughput(2, frames, messages)
    rounds = 20 if quick else 400
    figures = _throughput(rounds, frames, messages)
    met = figures["decode msgs/s"] >= TARGET_PER_S and figures["encode msgs/s"] >= TARGET_PER_S
    return [
        Result(
            name=NAME,
            target=f">= {TARGET_PER_S:,} msgs/s each way on one core (derived from delivery)",
            met=met,
            figures=figures,
            notes=["single thread, capture frames cycled in order; figures vary with load"],
        )
    ]
