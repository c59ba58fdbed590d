"""The circuit breaker of the shared tiers (Redis/Valkey and DynamoDB): a sick store costs little.

After ``failures`` consecutive errors the breaker opens: the tier is skipped (``allow()`` is
False) for ``cool_down`` seconds, then one call is let through as a trial ("half-open"); a
success closes the breaker, a failure opens it again at once. A fault that will not cure itself
in a few milliseconds (a missing table, a denied permission) may open it at once, with a warning
that says what to fix.

One warning per breaker, ever: the first time it opens (a hot path must not log on every
invocation); later openings are logged at debug level. The wall clock (``time.time``,
injectable) times the cool-down; a clock stepped back ends it (the tier is tried again rather
than skipped forever).

Thread-safe in the way the tiers need: counters and state are plain attributes updated without
a lock, so under heavy threading the counts are approximate and a trial may be made by more
than one thread; the breaker never blocks and never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._log import log

__all__ = ["Breaker"]


class Breaker:
    """Counts a tier's calls and skips the tier while it is sick; see the module docstring.

    ``what`` names the tier in log lines ("the shared tier (Redis)").
    """

    __slots__ = (
        "_consecutive",
        "_open_until",
        "_opened_at",
        "_warned",
        "attempts",
        "clock",
        "cool_down",
        "errors",
        "failures",
        "opens",
        "skipped",
        "what",
    )

    def __init__(
        self,
        what: str,
        failures: int = 3,
        cool_down: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failures < 1 or cool_down < 0:
            raise ValueError("tiered-cache: a breaker needs failures >= 1 and cool_down >= 0")
        self.what = what
        self.failures = failures
        self.cool_down = float(cool_down)
        self.clock = clock
        self._consecutive = 0
        self._opened_at = 0.0
        self._open_until = 0.0
        self._warned = False
        self.attempts = 0  # calls made (or tried) to the store
        self.errors = 0  # calls that failed
        self.skipped = 0  # calls not made because the breaker was open
        self.opens = 0  # times the breaker opened

    @property
    def available(self) -> bool:
        """False while the breaker is open (the tier is skipped until the cool-down ends)."""
        if self._open_until == 0.0:
            return True
        now = self.clock()
        return now >= self._open_until or now < self._opened_at  # clock stepped back: retry

    @property
    def state(self) -> str:
        """ "closed" (in use), "open" (skipped), "half-open" (the next call is a trial)."""
        if self._open_until == 0.0:
            return "closed"
        return "half-open" if self.available else "open"

    def allow(self) -> bool:
        """Whether to make a call now; counts it as an attempt, or as skipped."""
        if self.available:
            self.attempts += 1
            return True
        self.skipped += 1
        return False

    def success(self) -> None:
        """The call answered (an answer such as "condition failed" is a success)."""
        if self._consecutive:
            self._consecutive = 0
            self._open_until = 0.0

    def failure(self, exc: BaseException, fix: str | None = None) -> None:
        """The call failed with ``exc``. With ``fix`` (a fault that needs the user: what to do
        about it), the breaker opens at once and ``fix`` is the one warning logged."""
        self.errors += 1
        self._consecutive += 1
        if fix is None and self._consecutive < self.failures:
            log.debug("tiered-cache: %s error: %r", self.what, exc)
            return
        now = self.clock()
        self._opened_at, self._open_until = now, now + self.cool_down
        self.opens += 1
        if self._warned:
            log.debug("tiered-cache: %s still failing: %r", self.what, exc)
            return
        self._warned = True
        if fix is not None:
            log.warning(
                "tiered-cache: %s is unusable (%s: %s): %s. Skipping it for %g s at a time "
                "until it answers.",
                self.what,
                type(exc).__name__,
                exc,
                fix,
                self.cool_down,
            )
        else:
            log.warning(
                "tiered-cache: %s failed %d times in a row (%s: %s); skipping it for %g s at a "
                "time until it answers again",
                self.what,
                self._consecutive,
                type(exc).__name__,
                exc,
                self.cool_down,
            )
