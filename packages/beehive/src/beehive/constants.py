"""Wire constants: operations, groups, module names and resource types.

Values are KubeEdge's (protocol.md sections 1.2 to 1.5). They are plain
strings so that a message from a newer KubeEdge with a value we do not know
still decodes.
"""

from __future__ import annotations

from typing import Final

# -- operations (route.operation) -------------------------------------------
OP_INSERT: Final = "insert"
OP_DELETE: Final = "delete"
OP_QUERY: Final = "query"
OP_UPDATE: Final = "update"
OP_PATCH: Final = "patch"
OP_UPLOAD: Final = "upload"
OP_RESPONSE: Final = "response"
OP_ERROR: Final = "error"
OP_KEEPALIVE: Final = "keepalive"
OP_CONNECT: Final = "connect"
OP_GET: Final = "get"
OP_SUBSCRIBE: Final = "subscribe"
OP_UNSUBSCRIBE: Final = "unsubscribe"
OP_PUBLISH: Final = "publish"
OP_MESSAGE: Final = "message"
OP_CONNECTED: Final = "connected"
OP_DISCONNECTED: Final = "disconnected"
# viaduct control operations, answered with content "ack" (protocol.md 3.5)
OP_CONTROL_HEADER: Final = "header"
OP_CONTROL_CONFIG: Final = "config"
OP_CONTROL_PING: Final = "ping"
OP_CONTROL_PONG: Final = "pong"
CONTROL_OPERATIONS: Final = frozenset({OP_CONTROL_CONFIG, OP_CONTROL_PING, OP_CONTROL_PONG})

# -- groups (route.group) ------------------------------------------------------
GROUP_RESOURCE: Final = "resource"
GROUP_TWIN: Final = "twin"
GROUP_USER: Final = "user"
GROUP_FUNC: Final = "func"
GROUP_TASKMANAGER: Final = "taskmanager"
# edge-internal groups
GROUP_BUS: Final = "bus"
GROUP_HUB: Final = "hub"
GROUP_META: Final = "meta"
GROUP_EDGED: Final = "edged"
# cloud module groups
GROUP_CLOUDHUB: Final = "cloudhub"
GROUP_EDGECONTROLLER: Final = "edgecontroller"
GROUP_DEVICECONTROLLER: Final = "devicecontroller"
GROUP_SYNCCONTROLLER: Final = "synccontroller"
GROUP_DYNAMICCONTROLLER: Final = "dynamiccontroller"
GROUP_ROUTER: Final = "router"

# -- module names / route.source ------------------------------------------------
# cloud
MOD_CLOUDHUB: Final = "cloudhub"
MOD_EDGECONTROLLER: Final = "edgecontroller"
MOD_DEVICECONTROLLER: Final = "devicecontroller"
MOD_SYNCCONTROLLER: Final = "synccontroller"
MOD_DYNAMICCONTROLLER: Final = "dynamiccontroller"
MOD_ROUTER: Final = "router"
MOD_ROUTER_EVENTBUS: Final = "router_eventbus"
MOD_ROUTER_SERVICEBUS: Final = "router_servicebus"
# edge; the edge hub's module name on the wire is "websocket", not "edgehub"
MOD_EDGEHUB: Final = "websocket"
MOD_EDGED: Final = "edged"
MOD_EVENTBUS: Final = "eventbus"
MOD_SERVICEBUS: Final = "servicebus"
MOD_METAMANAGER: Final = "metamanager"
MOD_TWIN: Final = "twin"
SOURCE_EDGEHUB_NOTICE: Final = "edgehub"  # only on node/connection notices
SOURCE_META: Final = "meta"
SOURCE_BUS: Final = "bus"
SOURCE_METASERVER: Final = "metaserver"

# -- resource types (third segment of <ns>/<type>/<name>) ----------------------
RT_POD: Final = "pod"
RT_EVENT: Final = "event"
RT_CONFIGMAP: Final = "configmap"
RT_SERVICEACCOUNTTOKEN: Final = "serviceaccounttoken"
RT_SECRET: Final = "secret"
RT_NODE: Final = "node"
RT_PODLIST: Final = "podlist"
RT_PODSTATUS: Final = "podstatus"
RT_PODPATCH: Final = "podpatch"
RT_NODESTATUS: Final = "nodestatus"
RT_NODEPATCH: Final = "nodepatch"
RT_LEASE: Final = "lease"
RT_SERVICE: Final = "service"
RT_ENDPOINTS: Final = "endpoints"
RT_CSR: Final = "certificatesigningrequest"
RT_DEVICE: Final = "device"
RT_DEVICEMODEL: Final = "devicemodel"
RT_MEMBERSHIP: Final = "membership"
RT_TWIN: Final = "twin"
RESOURCE_K8S_CA: Final = "k8s/ca.crt"
RESOURCE_NODE_CONNECTION: Final = "node/connection"

#: the namespace segment for cluster-scoped objects
NULL_NAMESPACE: Final = "null"

# -- contents ---------------------------------------------------------------------
CONTENT_OK: Final = "OK"
CONTENT_PING: Final = "ping"
CONTENT_ACK: Final = "ack"
CONTENT_NACK: Final = "nack"
CLOUD_CONNECTED: Final = "cloud_connected"
CLOUD_DISCONNECTED: Final = "cloud_disconnected"
