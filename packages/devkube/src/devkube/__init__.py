"""devkube: an embedded Kubernetes API server for the demo and the tests."""

from __future__ import annotations
