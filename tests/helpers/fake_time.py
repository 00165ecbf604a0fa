"""A fake clock for the hook (and the sandbox): sleeping moves the clock at once, and every wait is recorded.

The hook takes `clock` and `sleep`; the sandbox reads the time through `include.exact_sandbox.server._now`. Given
the same FakeTime, both agree on what time it is, so a test sees the hook wait for a token interval or a rate-limit
window without waiting itself, and can assert each wait's length.
"""

from __future__ import annotations

import math
import time


class FakeTime:
    def __init__(self, now: float | None = None):
        # By default the real time, floored to a whole minute: the sandbox's tokens and day window stay plausible,
        # and its rate-limit windows (a divisor of a minute in the tests) start exactly at `now`.
        self.now = float(math.floor(time.time() / 60) * 60) if now is None else now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Time that passes without the hook sleeping (the hook's own work, a call's round trip)."""
        self.now += seconds
