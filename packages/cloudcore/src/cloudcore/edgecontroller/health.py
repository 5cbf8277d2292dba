"""Node health bookkeeping: when does an edge node's Ready turn Unknown.

Pure (time injected). Real clusters have kube-controller-manager's node
lifecycle controller for this; devkube has no controllers, and an edge node's
only link is cloudcore, so edgecontroller watches what it alone can see:

* a node whose session ended (cloudhub ``disconnected``) and did not come
  back within the grace period;
* a node that is connected but has not renewed its lease nor posted its
  status (``lease`` insert/update, ``nodepatch``, register) for the grace
  period.

Only nodes that connected to *this* cloudcore are judged, so several
cloudcores can share a cluster. A node is reported once per outage; hearing
from it again re-arms it (its kubelet sets Ready itself when it returns).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NodeHealth"]


@dataclass(slots=True)
class _State:
    connected: bool
    since: float  # connect/disconnect time
    heard: float  # last sign of life
    reported: bool = False


class NodeHealth:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._nodes: dict[str, _State] = {}

    def connected(self, node: str, now: float) -> None:
        self._nodes[node] = _State(True, now, now)

    def disconnected(self, node: str, now: float) -> None:
        st = self._nodes.get(node)
        if st is None:
            self._nodes[node] = _State(False, now, now)
        else:
            st.connected, st.since = False, now

    def heard(self, node: str, now: float) -> None:
        st = self._nodes.get(node)
        if st is None:
            # A request from a node means it is connected, even if the
            # connected event was missed (e.g. cloudcore restarted).
            self._nodes[node] = _State(True, now, now)
            return
        st.heard = now
        st.reported = False
        if not st.connected:
            st.connected, st.since = True, now

    def forget(self, node: str) -> None:
        self._nodes.pop(node, None)

    def __contains__(self, node: object) -> bool:
        """Whether ``node`` is tracked (connected to us since it was last forgotten)."""
        return node in self._nodes

    def is_connected(self, node: str) -> bool:
        st = self._nodes.get(node)
        return bool(st and st.connected)

    def due(self, now: float) -> list[str]:
        """Nodes to mark Unknown now; each is returned once per outage."""
        out: list[str] = []
        for node, st in self._nodes.items():
            if st.reported:
                continue
            last = st.heard if st.connected else max(st.since, st.heard)
            if now - last >= self.grace:
                st.reported = True
                out.append(node)
        return sorted(out)
