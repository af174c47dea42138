"""One dependency's breaker, asked before a call and told how the call ended, without holding a lock meanwhile.

pybreaker's own ``CircuitBreaker.call`` runs the guarded function under the breaker's lock, which would let
one model call or Postgres query at a time through a breaker. So the call runs outside pybreaker: ``check``
refuses it while the breaker is open, and its outcome is then handed to pybreaker (``succeeded``, ``failed``)
as an instant call, so that counting, opening, the half-open probe and closing stay pybreaker's own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pybreaker

from common.errors import DependencyUnavailable

T = TypeVar("T")

log = logging.getLogger("convoinsight.breakers")


class _Outage(Exception):
    """Stands for a failed call when its outcome is handed to pybreaker (the real error goes to the caller)."""


def _raise_outage() -> None:
    raise _Outage


def _nothing() -> None:
    return None


class Guard:
    """The breaker of the dependency ``name``: ``check`` before a call, then ``succeeded`` or ``failed``."""

    def __init__(self, name: str, breaker: pybreaker.CircuitBreaker, storage: pybreaker.CircuitBreakerStorage):
        self.name = name
        self._breaker = breaker
        self._storage = storage  # the same object pybreaker keeps: where opened_at is read

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return self._breaker.current_state

    def retry_after(self) -> int | None:
        """Whole seconds until the open breaker lets a probe through; None when a call may go now."""
        if self._breaker.current_state != pybreaker.STATE_OPEN:
            return None
        opened_at = self._storage.opened_at
        if opened_at is None:
            return None  # pybreaker lets a call through then too (as the probe)
        due = opened_at + dt.timedelta(seconds=self._breaker.reset_timeout)
        remaining = (due - dt.datetime.now(dt.UTC)).total_seconds()
        return math.ceil(remaining) if remaining > 0 else None

    def check(self, refusal: type[DependencyUnavailable] = DependencyUnavailable) -> None:
        """Raise ``refusal`` while the breaker is open; once its reset time passed, let the call probe."""
        wait = self.retry_after()
        if wait is not None:
            raise refusal(self.name, retry_after=max(1, wait))

    def succeeded(self) -> None:
        """Record that the dependency answered: the run of failures ends, and a half-open breaker closes."""
        self._hand_over(_nothing)

    def failed(self) -> None:
        """Record an outage: the run of failures grows (and opens the breaker at the threshold), or a probe failed."""
        self._hand_over(_raise_outage)

    def _hand_over(self, outcome: Callable[[], None]) -> None:
        before = self._breaker.current_state
        with contextlib.suppress(_Outage, pybreaker.CircuitBreakerError):
            # Open and not yet due: pybreaker refuses the outcome (a call that began before the breaker opened).
            self._breaker.call(outcome)
        after = self._breaker.current_state
        if after != before:
            log.warning("circuit breaker %s: %s -> %s", self.name, before, after)

    @contextlib.contextmanager
    def watching(self, is_outage: Callable[[BaseException], bool],
                 refusal: type[DependencyUnavailable] = DependencyUnavailable) -> Iterator[None]:
        """Check the breaker, run the block, and record how it ended (``is_outage`` decides what a failure is)."""
        self.check(refusal)
        try:
            yield
        except Exception as exc:
            (self.failed if is_outage(exc) else self.succeeded)()
            raise
        self.succeeded()

    def call(self, func: Callable[..., T], *args: Any, is_outage: Callable[[BaseException], bool],
             refusal: type[DependencyUnavailable] = DependencyUnavailable, **kwargs: Any) -> T:
        """Call ``func`` through the breaker."""
        with self.watching(is_outage, refusal):
            return func(*args, **kwargs)
