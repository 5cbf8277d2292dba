"""keadm: install kubeedge-py on clouds and edges."""

from __future__ import annotations
