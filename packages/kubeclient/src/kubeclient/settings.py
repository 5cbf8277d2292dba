"""Timeouts, retries and back-offs of the client, each a named setting.

``None`` disables a timeout. Tests shrink the back-offs; production keeps the
defaults, which follow kopf's (1, 1, 2, 3, 5, 8, 13, 21 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ClientSettings", "RetrySettings", "WatchSettings"]


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How requests are retried on transient errors.

    Transient: connection errors, timeouts, 5xx and 429. Each entry of
    ``backoffs`` is one more attempt after waiting that many seconds; a
    ``Retry-After`` from the server wins when it is longer (capped by
    ``max_retry_after``).
    """

    backoffs: tuple[float, ...] = (1, 1, 2, 3, 5, 8, 13, 21)
    max_retry_after: float = 60.0


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How watch streams are run (style.md rule 23).

    Attributes:
        server_timeout: ``timeoutSeconds`` asked of the server per watch request.
        inactivity_timeout: close a stream that delivered nothing (not even a
            bookmark) for this long; catches half-open connections.
        reconnect_backoffs: waits between failed watch/list attempts; the last one
            repeats forever.
        list_page_size: ``limit`` for the paged initial list; ``None`` lists at once.
        max_line: cap on one watch event line (bytes).
        min_watch_duration: a watch that ends sooner than this without any
            event is followed by a back-off before the next one.
    """

    server_timeout: int = 300
    inactivity_timeout: float | None = 330.0
    reconnect_backoffs: tuple[float, ...] = (0.5, 1, 2, 4, 8, 15, 30)
    list_page_size: int | None = 500
    max_line: int = 32 * 1024 * 1024
    min_watch_duration: float = 1.0


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything a :class:`kubeclient.KubeClient` can be tuned with.

    Attributes:
        request_timeout: total time for one non-watch request.
        connect_timeout: time to establish a connection.
        max_body: cap on a non-watch response body (bytes).
        token_reload_interval: how often a token file (in-cluster, bound service
            account tokens rotate) is read again.
    """

    request_timeout: float | None = 60.0
    connect_timeout: float | None = 10.0
    max_body: int = 64 * 1024 * 1024
    token_reload_interval: float = 60.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
