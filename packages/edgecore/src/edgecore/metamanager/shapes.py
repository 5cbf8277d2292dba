"""The shapes of cloud answers to edge requests (pure).

protocol.md 6.1-6.4 and the captures:

* node / lease / nodepatch / podpatch answers are an ObjectResp
  ``{"Object": <obj or null>, "Err": null | {"ErrStatus": <metav1.Status>}}``;
* configmap / secret / serviceaccounttoken answers are the object itself, or
  a serialized StatusError ``{"ErrStatus": <metav1.Status>}``;
* delete and legacy answers are the string ``"OK"`` or an error text.

Also the Status bodies metamanager uses for its own refusals (kubeedge-py:
``ServiceUnavailable`` 503 offline, ``Queued`` 503 for a status patch kept for
reconnect, ``Timeout`` 504, ``NotFound`` 404).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from beehive.constants import CONTENT_OK
from kecommon.resources import compare_resource_versions

__all__ = ["Answer", "is_older", "split_answer", "status"]

REASON_QUEUED = "Queued"


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer split into the object and the failure Status, if any."""

    obj: Any
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A serialized StatusError, as Go marshals ``*errors.StatusError``."""
    return {
        "ErrStatus": {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    }


def _err_status(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("ErrStatus"), dict):
        return dict(value["ErrStatus"])
    if isinstance(value, dict):
        return dict(value)
    return {"status": "Failure", "message": str(value), "reason": "", "code": 500}


def split_answer(content: Any) -> Answer:
    """Split any answer shape into object and error Status."""
    if isinstance(content, str):
        text = content.strip()
        if text == CONTENT_OK:
            return Answer(obj=None)
        # GetContentData semantics: JSON text inside a string is the same object.
        if text[:1] in ("{", "["):
            try:
                return split_answer(json.loads(text))
            except ValueError:
                pass
        return Answer(obj=None, error=_err_status(text))
    if isinstance(content, dict):
        if "Object" in content or "Err" in content:
            err = content.get("Err")
            if err:
                return Answer(obj=content.get("Object"), error=_err_status(err))
            return Answer(obj=content.get("Object"))
        if "ErrStatus" in content:
            return Answer(obj=None, error=_err_status(content))
        return Answer(obj=content)
    return Answer(obj=content)


def _version(obj: Any) -> tuple[str, str] | None:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return None
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    if not isinstance(uid, str) or not uid or not isinstance(rv, str):
        return None
    return uid, rv


def is_older(answer: Any, stored: Any) -> bool:
    """Whether ``answer`` is an older version of the object ``stored`` holds.

    The cloud sends an object's updates in order, but the answer to a query
    may overtake or trail them (it is read from the cloud's cache when the
    query arrives). Only the same object (same UID) with numeric resource
    versions can be compared; anything else is not "older".
    """
    a, s = _version(answer), _version(stored)
    if a is None or s is None or a[0] != s[0]:
        return False
    return compare_resource_versions(a[1], s[1]) == -1
