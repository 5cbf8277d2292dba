"""A pod spec that references objects every way Kubernetes allows."""

from __future__ import annotations

from typing import Any

POD_SPEC: dict[str, Any] = {
    "serviceAccountName": "runner",
    "imagePullSecrets": [{"name": "pull"}],
    "volumes": [
        {"name": "a", "configMap": {"name": "cm-vol"}},
        {"name": "b", "secret": {"secretName": "sec-vol"}},
        {
            "name": "c",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cm-proj"}},
                    {"secret": {"name": "sec-proj"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]
            },
        },
        {"name": "d", "emptyDir": {}},
    ],
    "initContainers": [
        {"name": "i", "image": "busybox", "envFrom": [{"secretRef": {"name": "sec-envfrom"}}]}
    ],
    "containers": [
        {
            "name": "c",
            "image": "busybox",
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "k"}}},
                {"name": "C", "value": "plain"},
                {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}],
        }
    ],
}
