"""cloudcore of kubeedge-py."""

from __future__ import annotations
