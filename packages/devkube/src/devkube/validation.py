"""Name validation with kube-apiserver's messages (k8s.io/apimachinery/pkg/util/validation)."""

from __future__ import annotations

import re

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)

# Kinds whose names must be DNS-1123 labels / DNS-1035 labels; everything else is a subdomain.
LABEL_NAMED = {"Namespace"}
DNS1035_NAMED = {"Service"}
# RBAC objects are named like path segments (kube's ValidateRBACName), which is why
# ClusterRoles such as "system:node" may hold a colon.
PATH_SEGMENT_NAMED = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def name_errors(kind: str, name: str) -> list[str]:
    """kube's error messages for ``name`` as the name of a ``kind`` ([] when valid)."""
    if kind in LABEL_NAMED:
        return label_errors(name)
    if kind in PATH_SEGMENT_NAMED:
        return path_segment_errors(name)
    if kind in DNS1035_NAMED:
        errs = []
        if len(name) > 63:
            errs.append("must be no more than 63 characters")
        if not _DNS1035_LABEL.match(name):
            errs.append(DNS1035_MSG)
        return errs
    return subdomain_errors(name)


def path_segment_errors(name: str) -> list[str]:
    """kube's path.IsValidPathSegmentName messages."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def subdomain_errors(name: str) -> list[str]:
    errs = []
    if len(name) > 253:
        errs.append("must be no more than 253 characters")
    if not _SUBDOMAIN.match(name):
        errs.append(SUBDOMAIN_MSG)
    return errs


def label_errors(name: str) -> list[str]:
    errs = []
    if len(name) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(name):
        errs.append(LABEL_MSG)
    return errs
