"""IB's hard pacing for small bars, kept for the whole gateway (IB paces per login).

A request is judged against the requests accepted before it; a rejected request is not
recorded, so it does not eat budget.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ibsim.config import PacingRules


@dataclass(frozen=True)
class PacedRequest:
    """What IB compares: the contract/exchange/whatToShow key and the whole request."""

    at: float  # epoch seconds
    key: tuple  # (conId, exchange, whatToShow)
    identity: tuple  # every parameter of the request
    weight: int  # BID_ASK counts twice


class Pacer:
    def __init__(self, rules: PacingRules) -> None:
        self.rules = rules
        self._log: deque[PacedRequest] = deque()

    def admit(self, request: PacedRequest) -> bool:
        """Record and allow `request`, or refuse it (a pacing violation)."""
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
        if burst + 1 >= rules.burst_limit:
            return False
        self._log.append(request)
        return True

    def used(self, now: float) -> int:
        """Budget used in the current window (BID_ASK counted twice)."""
        return sum(r.weight for r in self._log if r.at > now - self.rules.window)
