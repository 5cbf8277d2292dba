"""Which device sits on which node, and which models each node needs.

Pure bookkeeping for :mod:`cloudcore.devicecontroller.downstream`: KubeEdge
sends a DeviceModel to a node with the first Device there that uses it (per
namespace) and deletes it with the last one (protocol.md 7.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ModelKey", "Placement"]


@dataclass(frozen=True, slots=True, order=True)
class ModelKey:
    node: str
    namespace: str
    model: str


@dataclass(slots=True)
class Placement:
    #: device key ``ns/name`` -> (node, model name)
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: (node, ns, model) -> device names using it
    users: dict[ModelKey, set[str]] = field(default_factory=dict)
    #: (node, ns, model) whose model object has been sent
    sent: set[ModelKey] = field(default_factory=set)

    def place(self, namespace: str, name: str, node: str, model: str) -> bool:
        """Record the device; True if it is the first user of its model there."""
        self.devices[f"{namespace}/{name}"] = (node, model)
        if not model:
            return False
        key = ModelKey(node, namespace, model)
        users = self.users.setdefault(key, set())
        first = not users
        users.add(name)
        return first

    def remove(self, namespace: str, name: str) -> tuple[str, str, bool] | None:
        """Forget the device: (node, model, was the last user) or None if unknown."""
        found = self.devices.pop(f"{namespace}/{name}", None)
        if found is None:
            return None
        node, model = found
        if not model:
            return node, model, False
        key = ModelKey(node, namespace, model)
        users = self.users.get(key, set())
        users.discard(name)
        last = not users
        if last:
            self.users.pop(key, None)
        return node, model, last

    def where(self, namespace: str, name: str) -> tuple[str, str] | None:
        return self.devices.get(f"{namespace}/{name}")

    def model_nodes(self, namespace: str, model: str) -> list[ModelKey]:
        """Every (node, ns, model) with at least one device using the model."""
        return sorted(k for k in self.users if k.namespace == namespace and k.model == model)
