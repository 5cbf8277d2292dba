"""edgecore of kubeedge-py."""

from __future__ import annotations
