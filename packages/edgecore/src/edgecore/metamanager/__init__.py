"""metamanager: the edge's store of cloud objects and its request broker."""

from __future__ import annotations

from edgecore.metamanager.manager import MetaManager
from edgecore.metamanager.settings import MetaSettings, from_config
from edgecore.metamanager.store import MetaStore

__all__ = ["MetaManager", "MetaSettings", "MetaStore", "from_config"]
