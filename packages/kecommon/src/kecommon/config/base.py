"""The base of the KubeEdge-compatible configuration models.

KubeEdge parses its config files with a plain YAML unmarshal over the default
config (``staging/.../componentconfig/cloudcore/v1alpha1/helper.go`` Parse), so
a missing key keeps its default and an unknown key is silently dropped. We are
stricter about the second point and keep the first:

* every key KubeEdge knows is accepted;
* a key KubeEdge knows but we do not act on is kept (and dumped again) and
  reported once at start-up (:meth:`KEModel.unimplemented`);
* a key neither KubeEdge nor we know, or a value of the wrong type, is a
  :class:`ConfigError` naming the key path and the file.

Models are pydantic v2, in strict mode (Go's decoder does not turn ``"10"``
into 10 either), with snake_case attributes and KubeEdge's camelCase keys as
aliases. KubeEdge's spelling is irregular (``tlsCAFile`` in cloudHub but
``tlsCaFile`` in edgeHub, ``unixsocket``, ``kubeAPIConfig``), so every model
names its exceptions to the camelCase rule in :func:`aliases`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = [
    "ConfigError",
    "GoDuration",
    "KEModel",
    "PathStr",
    "aliases",
    "check_keys",
    "duration_seconds",
]


class ConfigError(ValueError):
    """A config file is unreadable, has an unknown key, a wrong type or an invalid value.

    ``key`` is the dotted KubeEdge key path (``modules.cloudHub.websocket.port``)
    and ``file`` the file it came from, when known.
    """

    def __init__(self, message: str, *, key: str = "", file: str = "") -> None:
        self.message = message
        self.key = key
        self.file = file
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.file}: " if self.file else ""
        at = f"{self.key}: " if self.key else ""
        return f"{where}{at}{self.message}"

    def in_file(self, file: str) -> ConfigError:
        """This error with the file name set (the loader adds it)."""
        return ConfigError(self.message, key=self.key, file=file)


def aliases(overrides: dict[str, str] | None = None) -> Callable[[str], str]:
    """An alias generator: camelCase, except for the names in ``overrides``."""
    table = dict(overrides or {})

    def alias(name: str) -> str:
        return table.get(name) or to_camel(name)

    return alias


# Go's time.ParseDuration units; metav1.Duration fields hold strings like "10s" or "5m0s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def duration_seconds(value: str) -> float:
    """Seconds in a Go duration string (``"10s"``, ``"1m30s"``, ``"0"``).

    Raises:
        ValueError: ``value`` is not a Go duration.
    """
    text = value.strip()
    sign = 1.0
    if text and text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f"{value!r} is not a duration such as 10s, 5m or 1h30m")
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration such as 10s, 5m or 1h30m")
    return sign * total


def _check_duration(value: str) -> str:
    duration_seconds(value)
    return value


#: A Kubernetes ``metav1.Duration``: kept as the string the file holds.
GoDuration = Annotated[str, AfterValidator(_check_duration)]


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


#: A file or directory path: a string in the file; code may also assign a ``Path``.
PathStr = Annotated[str, BeforeValidator(_fspath)]


class KEModel(BaseModel):
    """Base of every config struct.

    Class attributes describe how a struct maps onto KubeEdge's:

    ``KUBEEDGE_KEYS``
        keys KubeEdge's struct has that we do not model; accepted, kept and
        reported as not implemented.
    ``OPEN``
        KubeEdge's struct is far larger than our model (the tailored kubelet
        configuration); any further key is accepted, kept and reported.
    ``UNIMPLEMENTED``
        modeled keys (KubeEdge spelling) we accept but do not act on; reported
        when set to something other than the default.
    ``IMPLEMENTED``
        ``False`` for a module or server we do not have; reported when its
        ``enable`` is true.
    """

    model_config = ConfigDict(
        alias_generator=aliases(),
        populate_by_name=True,
        strict=True,
        extra="allow",
        validate_assignment=True,
    )

    KUBEEDGE_KEYS: ClassVar[frozenset[str]] = frozenset()
    OPEN: ClassVar[bool] = False
    UNIMPLEMENTED: ClassVar[frozenset[str]] = frozenset()
    IMPLEMENTED: ClassVar[bool] = True

    def unimplemented(self) -> list[str]:
        """Key paths of this config that are accepted but not implemented."""
        return [path for path, _reason in self.unimplemented_with_reasons()]

    def unimplemented_with_reasons(self, prefix: str = "") -> list[tuple[str, str]]:
        """Like :meth:`unimplemented`, with a short reason for each path."""
        return list(_walk_unimplemented(self, prefix))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _walk_unimplemented(
    model: KEModel, prefix: str, inherited: bool = False
) -> Iterator[tuple[str, str]]:
    cls = type(model)
    if not cls.IMPLEMENTED and getattr(model, "enable", False) is True:
        yield prefix, "enabled, but not implemented here; it will not run"
        return
    for name, info in cls.model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        path = _join(prefix, key)
        unimplemented = inherited or key in cls.UNIMPLEMENTED
        if isinstance(value, KEModel):
            yield from _walk_unimplemented(value, path, unimplemented)
        elif isinstance(value, list) and any(isinstance(v, KEModel) for v in value):
            for i, item in enumerate(value):
                if isinstance(item, KEModel):
                    yield from _walk_unimplemented(item, f"{path}[{i}]", unimplemented)
        elif unimplemented and value != info.get_default(call_default_factory=True):
            yield path, "accepted, but has no effect here"
    for key in model.model_extra or {}:
        yield _join(prefix, key), "KubeEdge option accepted, but not implemented here"


def _submodel(annotation: Any) -> tuple[type[KEModel] | None, bool]:
    """The KEModel inside ``annotation`` and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, KEModel):
        return annotation, False
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is list and args:
        inner, _ = _submodel(args[0])
        return inner, True
    for arg in args:  # X | None
        inner, is_list = _submodel(arg)
        if inner is not None:
            return inner, is_list
    return None, False


def _accepts_none(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


def _empty_for(annotation: Any) -> Any:
    """What Go leaves in a slice or map field given ``null``: an empty one."""
    origin = get_origin(annotation) or annotation
    for candidate in (origin, *(get_origin(a) or a for a in get_args(annotation))):
        if candidate is list:
            return []
        if candidate is dict:
            return {}
    return _KEEP_DEFAULT


_KEEP_DEFAULT = object()


def check_keys(model: type[KEModel], data: Any, prefix: str = "") -> Any:
    """Check the keys of ``data`` for ``model`` and return it with Go's null rules applied.

    Raises :class:`ConfigError` for the first key neither KubeEdge nor we
    know. Types are left to pydantic. Snake_case spellings of our attributes
    are refused in files because KubeEdge would not read them.

    ``key:`` with no value (YAML null) means what it means to Go's decoder: a
    list or map becomes empty, anything else keeps its default.
    """
    if not isinstance(data, dict):
        return data
    by_alias = {(info.alias or name): info for name, info in model.model_fields.items()}
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = _join(prefix, str(key))
        if not isinstance(key, str):
            raise ConfigError("keys must be strings", key=path)
        info = by_alias.get(key)
        if info is not None:
            if value is None and not _accepts_none(info.annotation):
                empty = _empty_for(info.annotation)
                if empty is not _KEEP_DEFAULT:
                    out[key] = empty
                continue
            sub, is_list = _submodel(info.annotation)
            if sub is not None and is_list and isinstance(value, list):
                value = [check_keys(sub, item, f"{path}[{i}]") for i, item in enumerate(value)]
            elif sub is not None and not is_list:
                value = check_keys(sub, value, path)
            out[key] = value
            continue
        if key in model.KUBEEDGE_KEYS or model.OPEN:
            out[key] = value
            continue
        known = sorted(by_alias) + sorted(model.KUBEEDGE_KEYS)
        close = difflib.get_close_matches(key, known, n=1)
        if key in model.model_fields:
            close = [model.model_fields[key].alias or key]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown key{hint}", key=path)
    return out
