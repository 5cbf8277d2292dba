"""kecommon: what cloudcore, edgecore and keadm share.

Resource paths, certificates and tokens, the QUIC framing, and the
KubeEdge-compatible configuration models.
"""

from __future__ import annotations
