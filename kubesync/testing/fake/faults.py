"""Fault injection: what a test asks the fake to do wrong, and when.

``fail_next`` answers the next matching requests with an error Status, ``delay_next``
holds them first, ``drop_watches`` cuts every open watch connection, and ``silence``
makes the server accept requests and never answer (nor send watch events) until
``resume``. Thread-safe; waits end promptly when the server stops.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional

import attrs


@attrs.define
class _Rule:
    remaining: int
    code: int = 0
    reason: str = ""
    message: str = ""
    delay: float = 0.0
    method: Optional[str] = None
    path_contains: Optional[str] = None
    retry_after: Optional[int] = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}


class Faults:
    """The fault plan of one ``FakeApiServer`` (``server.faults``)."""

    def __init__(self, stopping: threading.Event) -> None:
        self._lock = threading.Condition()
        self._stopping = stopping
        self._rules: List[_Rule] = []
        self._silent = False
        self._drops = 0  # a counter watches compare with: a change means "drop now"

    def fail_next(self, n: int = 1, *, code: int = 500, reason: Optional[str] = None,
                  message: Optional[str] = None, method: Optional[str] = None,
                  path_contains: Optional[str] = None, retry_after: Optional[int] = None
                  ) -> None:
        """Answer the next ``n`` requests (of ``method``, whose path contains
        ``path_contains``) with ``code`` and a Status; ``retry_after`` sets that header."""
        rule = _Rule(n, code, reason or _REASONS.get(code, "InternalError"),
                     message or f"injected failure ({code})", method=method,
                     path_contains=path_contains, retry_after=retry_after)
        with self._lock:
            self._rules.append(rule)

    def delay_next(self, n: int = 1, *, seconds: float, method: Optional[str] = None,
                   path_contains: Optional[str] = None) -> None:
        """Hold the next ``n`` matching requests for ``seconds`` before serving them."""
        with self._lock:
            self._rules.append(_Rule(n, delay=seconds, method=method,
                                     path_contains=path_contains))

    def drop_watches(self) -> None:
        """Cut every watch connection open now (no clean end of stream)."""
        with self._lock:
            self._drops += 1
            self._lock.notify_all()

    def silence(self) -> None:
        """Accept connections and requests, answer nothing, until ``resume()``."""
        with self._lock:
            self._silent = True

    def resume(self) -> None:
        with self._lock:
            self._silent = False
            self._lock.notify_all()

    def clear(self) -> None:
        """Forget every pending fault and resume."""
        with self._lock:
            self._rules.clear()
            self._silent = False
            self._lock.notify_all()

    # -- used by the server ---------------------------------------------------------

    @property
    def drops(self) -> int:
        with self._lock:
            return self._drops

    @property
    def silent(self) -> bool:
        with self._lock:
            return self._silent

    def wake(self) -> None:
        """Wake every waiter (the server is stopping)."""
        with self._lock:
            self._lock.notify_all()

    def wait_while_silent(self) -> None:
        with self._lock:
            while self._silent and not self._stopping.is_set():
                self._lock.wait()  # woken by resume(), clear() and wake() (stop)

    def take(self, method: str, path: str) -> Optional[Dict[str, Any]]:
        """The fault for this request, if one is due: consumes one use of each rule that
        matches; a delay is waited out here, a failure returned to answer."""
        delay = 0.0
        failure: Optional[_Rule] = None
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(method, path):
                    continue
                if rule.code and failure is not None:
                    continue
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                if rule.code:
                    failure = rule
                else:
                    delay = max(delay, rule.delay)
        if delay:
            self._stopping.wait(delay)
        if failure is None:
            return None
        return {"code": failure.code, "reason": failure.reason, "message": failure.message,
                "retry_after": failure.retry_after}
