"""IB's hard pacing for small bars, kept for the whole gateway (IB paces per login).

A request is judged against the requests accepted before it; a rejected request is not
recorded, so it does not eat budget.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol


class PacingLimits(Protocol):
    """The limits a Pacer enforces (ibsim.config.PacingRules), in seconds and requests."""

    window: float
    window_limit: int
    identical_window: float
    burst_window: float
    burst_limit: int


@dataclass(frozen=True)
class PacedRequest:
    """What IB compares: the contract/exchange/whatToShow key and the whole request."""

    at: float  # epoch seconds
    key: tuple  # (conId, exchange, whatToShow)
    identity: tuple  # every parameter of the request
    weight: int  # BID_ASK counts twice


class Pacer:
    def __init__(self, rules: PacingLimits) -> None:
        self.rules = rules
        self._log: deque[PacedRequest] = deque()
        self.admitted = 0  # paced requests accepted and refused since the start, for tests
        self.refused = 0

    def admit(self, request: PacedRequest) -> bool:
        """Record and allow `request`, or refuse it (a pacing violation)."""
        if self._allows(request):
            self._log.append(request)
            self.admitted += 1
            return True
        self.refused += 1
        return False

    def _allows(self, request: PacedRequest) -> bool:
        rules = self.rules
        horizon = request.at - max(rules.window, rules.identical_window, rules.burst_window)
        while self._log and self._log[0].at <= horizon:
            self._log.popleft()
        in_window = sum(r.weight for r in self._log if r.at > request.at - rules.window)
        if in_window + request.weight > rules.window_limit:
            return False
        if any(
            r.identity == request.identity and r.at > request.at - rules.identical_window
            for r in self._log
        ):
            return False
        burst = sum(
            1 for r in self._log if r.key == request.key and r.at > request.at - rules.burst_window
        )
        return burst + 1 < rules.burst_limit

    def used(self, now: float) -> int:
        """Budget used in the current window (BID_ASK counted twice)."""
        return sum(r.weight for r in self._log if r.at > now - self.rules.window)
