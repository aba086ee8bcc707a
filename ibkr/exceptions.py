"""The project's exceptions: every failure the user sees is one sentence with a cause and a fix.

Owns: `IBWError` and its subclasses (contract not found, ambiguous, invalid request, pacing, no
data, no permission, gateway unavailable, timeout, expired). Which IB code raises which lives in
ibkr.errors. Imports the standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

MAX_DETAIL = 200  # characters of IB's own text quoted in a sentence
MAX_SENTENCE = 600


def clean_text(text: object) -> str:
    """One line: control characters and line breaks of any kind become single spaces."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return " ".join(s.split())


def clip_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class IBWError(Exception):
    """A failure the user sees as one sentence: "<subject>: <cause>; <fix> (IB <code>)."

    `cause` and `fix` come from the catalogue (or the raiser); `ib_text` keeps IB's own words for
    logs; `detail` is the part of IB's text worth quoting in the sentence (e.g. 321's reason).
    """

    default_cause: ClassVar[str] = "IB reported a problem"
    default_fix: ClassVar[str] = "see the gateway log and retry"

    def __init__(
        self,
        cause: str = "",
        fix: str = "",
        *,
        code: int | None = None,
        ib_text: str = "",
        subject: str = "",
        detail: str = "",
    ) -> None:
        if not cause and not fix:
            cause, fix = self.default_cause, self.default_fix
        self.code = code
        self.ib_text = ib_text
        self.cause = cause
        self.fix = fix
        self.subject = subject
        self.detail = detail
        super().__init__(self.sentence)

    def _cause_text(self) -> str:
        cause = clean_text(self.cause).rstrip(" .") or self.default_cause
        detail = clip_text(clean_text(self.detail), MAX_DETAIL)
        return f'{cause} ("{detail}")' if detail else cause

    @property
    def sentence(self) -> str:
        """Exactly one line; a colon follows the subject, or the cause when there is none."""
        cause = self._cause_text()
        fix = clean_text(self.fix).rstrip(" .")
        subject = clean_text(self.subject)
        if subject:
            text, sep = f"{subject}: {cause}", "; "
        else:
            text, sep = cause[:1].upper() + cause[1:], ": "
        if fix:
            text += sep + fix
        text = clip_text(text, MAX_SENTENCE)
        if self.code is not None:
            text += f" (IB {self.code})"
        return text + "."

    def __str__(self) -> str:
        return self.sentence


class ContractNotFound(IBWError):
    """IB knows no contract matching the description (200)."""

    default_cause = "no security definition was found"
    default_fix = "check the symbol, security type, exchange and currency"


class AmbiguousContract(IBWError):
    """The description matches several contracts (200 "is ambiguous"); `candidates` lists them."""

    default_cause = "the contract description matches more than one contract"
    default_fix = "add the primary exchange, currency, expiry or multiplier, or use the conId"

    def __init__(
        self, cause: str = "", fix: str = "", *, candidates: Sequence[str] = (), **kwargs
    ) -> None:
        self.candidates: list[str] = [clean_text(c) for c in candidates if clean_text(c)]
        super().__init__(cause, fix, **kwargs)

    def _cause_text(self) -> str:
        cause = super()._cause_text()
        if not self.candidates:
            return cause
        shown = ", ".join(self.candidates[:5])
        more = len(self.candidates) - 5
        return f"{cause} (candidates: {shown}{f' and {more} more' if more > 0 else ''})"


class InvalidRequest(IBWError):
    """IB refused the request's shape (321, 10314, 10339, ...); unchanged, it fails again."""

    default_cause = "IB rejected the request as invalid"
    default_fix = "fix the request; retrying it unchanged will fail again"


class PacingViolation(IBWError):
    """One of IB's rate or concurrency limits was hit: wait, then retry."""

    default_cause = "IB's pacing limit was hit"
    default_fix = "wait for the pacing window to clear and retry"


class NoData(IBWError):
    """IB confirmed there is nothing to return: record the window as empty, not as failed."""

    default_cause = "IB has no data for this request"
    default_fix = "nothing to fix; record the window as confirmed empty"


class NoPermission(IBWError):
    """The account lacks the market data subscription this request needs."""

    default_cause = "the account has no market data permission for this contract"
    default_fix = "subscribe to the exchange's market data in Client Portal"


class GatewayUnavailable(IBWError, ConnectionError):
    """The gateway cannot be reached or has lost IB; a ConnectionError for generic handlers too."""

    default_cause = "the gateway is not reachable"
    default_fix = "start a gateway (`ibw gateway`) or point IB_HOST/IB_PORT at IB Gateway or TWS"


class RequestTimeout(IBWError, TimeoutError):
    """A request got no answer within its timeout (IB may be pacing it silently)."""

    default_cause = "IB did not answer within the request's timeout"
    default_fix = "check that the gateway is connected, then retry with a smaller request"

    @classmethod
    def after(cls, seconds: float, subject: str = "") -> RequestTimeout:
        """The usual way to raise it: how long we waited, and for what."""
        return cls(
            f"IB did not answer within {seconds:g} s",
            "check that the gateway is connected and not pacing, then retry with a smaller request",
            subject=subject,
        )


class ExpiredContract(IBWError):
    """The contract expired and IB no longer serves it (166)."""

    default_cause = "the contract has expired and IB no longer serves its history"
    default_fix = "drop the request; IB keeps no history of expired options"


class IBRequestError(IBWError):
    """Any other IB failure; the sentence still says what happened and what to do."""
