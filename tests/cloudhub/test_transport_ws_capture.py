"""Replay real KubeEdge edgecore traffic (tests/data/captures) into our WebSocket server.

The upgrade request goes out byte for byte as KubeEdge's edgecore sent it (header
names, order and spelling), then every edge->cloud frame as a masked text frame.
Every one must reach the session layer, decoded to the same message.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from beehive import codec
from fixtures.hubpki import Pki, RecordingHandler, wait_for

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def lines(name: str) -> list[dict[str, Any]]:
    out = []
    for raw in (CAPTURES / name).read_text().splitlines():
        item = json.loads(raw)
        if item is not None:
            out.append(item)
    return out


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 1 << 16:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize(
    "capture", ["kubeedge-1.23-ws-pods.jsonl", "kubeedge-1.23-ws-devices.jsonl"]
)
async def test_real_edgecore_upgrade_and_frames_are_accepted(
    ws_server: Any, pki: Pki, recording_handler: RecordingHandler, capture: str
) -> None:
    recorded = lines(capture)
    upgrade = recorded[0]
    assert upgrade["dir"] == "upgrade"
    node = upgrade["frame"]["headers"]["Node_id"]
    server = await ws_server()
    reader, writer = await asyncio.open_connection(
        "localhost", server.port, ssl=pki.client_context(node)
    )
    request = f"GET {upgrade['frame']['path']} HTTP/1.1\r\n"
    for name, value in upgrade["frame"]["headers"].items():
        if name == "Host":
            value = f"localhost:{server.port}"
        request += f"{name}: {value}\r\n"
    writer.write((request + "\r\n").encode())
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert response.startswith(b"HTTP/1.1 101"), response

    upstream = [item["frame"] for item in recorded if item["dir"] == "edge->cloud"]
    assert upstream
    for frame in upstream:
        # Go's encoding/json writes compact JSON plus a newline (WriteJSON).
        writer.write(masked_text_frame(json.dumps(frame, separators=(",", ":")).encode() + b"\n"))
    await writer.drain()
    await wait_for(lambda: len(recording_handler.of(node)) == len(upstream), what="all frames")
    assert [codec.to_obj(m) for m in recording_handler.of(node)] == [
        codec.to_obj(codec.decode_obj(f)) for f in upstream
    ]
    writer.close()
    await wait_for(lambda: recording_handler.disconnects)
