"""kubeclient: the only package that talks HTTP to a Kubernetes API server."""

from __future__ import annotations
