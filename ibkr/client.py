"""ib_async with the project's rules: errors raise, every request has a deadline, requests count.

ib_async turns a timeout or an IB error into an empty list by default; here each request ends
as data, or as an IBWError whose sentence names the cause and the fix.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from ib_async import (
    IB,
    BarData,
    Contract,
    ContractDescription,
    ContractDetails,
    OptionChain,
    RequestError,
)

from ibkr import errors
from ibkr.connection import ClientIdInUse, ConnectionSettings, connect
from ibkr.universe import check_what_to_show

T = TypeVar("T")
CLIENT_ID_SPAN = 900  # ids base .. base + span - 1 are handed to concurrent runs
CONNECT_ATTEMPTS = 5
INVALID_REQUEST = 321  # IB's final answer to a malformed request; ib_async calls it a warning


def client_id_for(key: str, base: int) -> int:
    """A client id derived from a run key, so concurrent runs rarely pick the same one."""
    digest = int(hashlib.sha1(key.encode()).hexdigest(), 16)
    return base + digest % CLIENT_ID_SPAN


@dataclass
class IBClient:
    ib: IB
    request_timeout: float = 30.0
    requests: int = 0  # requests sent through this client, for run metadata

    @classmethod
    def open(
        cls, settings: ConnectionSettings, key: str, request_timeout: float = 30.0
    ) -> IBClient:
        """Connect with a client id derived from `key`; on a clash, try the next ids."""
        first = client_id_for(key, settings.client_id)
        last_error: ClientIdInUse | None = None
        for attempt in range(CONNECT_ATTEMPTS):
            client_id = settings.client_id + (first - settings.client_id + attempt) % CLIENT_ID_SPAN
            try:
                ib = connect(replace(settings, client_id=client_id))
            except ClientIdInUse as exc:
                last_error = exc
                continue
            ib.RaiseRequestErrors = True
            ib.RequestTimeout = request_timeout
            return cls(ib, request_timeout)
        assert last_error is not None
        raise last_error

    def close(self) -> None:
        self.ib.disconnect()

    def run(self, coro: Awaitable[T]) -> T:
        return self.ib.run(coro)

    async def call(
        self, coro: Awaitable[T], subject: str, count: int = 1, timeout: float | None = None
    ) -> T:
        """One request (or `count` of them) with a deadline, its failure as an IBWError."""
        self.requests += count
        try:  # no wait_for: its inner task could end with an exception nobody retrieves
            async with asyncio.timeout(timeout or self.request_timeout):
                return await coro
        except RequestError as exc:
            raise errors.from_request_error(exc, subject) from exc
        except TimeoutError as exc:
            raise errors.RequestTimeout.after(self.request_timeout, subject) from exc
        except ConnectionError as exc:
            raise errors.GatewayUnavailable(
                "the connection to the gateway dropped",
                "check the gateway and run again",
                subject=subject,
            ) from exc

    async def _refusable(
        self, contract: Contract, request: Callable[[], Awaitable[T]], subject: str
    ) -> T:
        """`request()` for `contract`, ended at once by IB's 321. ib_async treats 321 as a
        warning and leaves the request waiting for its timeout, though IB never answers it;
        its error event names the request's own contract object, which tells the requests
        apart. The refusal cancels the waiting task and is raised in its place."""
        refusal: list[errors.IBWError] = []
        waiting = asyncio.current_task()

        def on_error(req_id: int, code: int, text: str, about: object) -> None:
            if code == INVALID_REQUEST and about is contract and not refusal and waiting:
                refusal.append(errors.from_ib(code, text, subject))
                waiting.cancel()

        self.ib.errorEvent += on_error
        try:
            return await request()
        except asyncio.CancelledError:
            if refusal and waiting:
                waiting.uncancel()  # the cancel was ours, not the caller's
                raise refusal[0] from None
            raise
        finally:
            self.ib.errorEvent -= on_error

    async def historical_bars(
        self,
        contract: Contract,
        end: str,
        duration: str,
        bar_size: str,
        what_to_show: str,
        use_rth: bool,
        subject: str,
    ) -> list[BarData]:
        """One reqHistoricalData with epoch dates. IB's "no data" raises NoData; a timeout
        raises RequestTimeout after cancelling the request (ib_async alone would return []);
        a whatToShow IB refuses for the security type, InvalidRequest before anything is sent."""
        check_what_to_show(contract.secType, what_to_show, subject)
        started = time.monotonic()
        bars = await self.call(
            self._refusable(contract, partial(
                self.ib.reqHistoricalDataAsync, contract, end, duration, bar_size, what_to_show,
                use_rth, 2, timeout=self.request_timeout,
            ), subject),
            subject,
            timeout=self.request_timeout + 5,  # ib_async's own deadline goes first and cancels
        )  # fmt: skip
        if not bars and time.monotonic() - started >= self.request_timeout:
            raise errors.RequestTimeout.after(self.request_timeout, subject)
        return list(bars)

    async def head_timestamp(
        self, contract: Contract, what_to_show: str, use_rth: bool
    ) -> datetime:
        """The earliest bar IB has for the contract (reqHeadTimeStamp, epoch form); checked
        and ended on 321 as historical_bars is."""
        subject = f"earliest data of {errors.describe_contract(contract)}"
        check_what_to_show(contract.secType, what_to_show, subject)
        request = partial(self.ib.reqHeadTimeStampAsync, contract, what_to_show, use_rth, 2)
        return await self.call(self._refusable(contract, request, subject), subject)

    async def now(self) -> datetime:
        """The gateway's clock: 'today' for snapshots is IB's today, not this machine's."""
        return await self.call(self.ib.reqCurrentTimeAsync(), "the current time")

    async def details(self, contract: Contract, subject: str) -> list[ContractDetails]:
        return await self.call(self.ib.reqContractDetailsAsync(contract), subject)

    async def details_many(
        self, contracts: Sequence[Contract], subject: str, batch: int
    ) -> list[list[ContractDetails] | errors.IBWError]:
        """Contract details in batches (a throttle of our own on top of ib_async's 45 msg/s)."""
        results: list[list[ContractDetails] | errors.IBWError] = []
        for start in range(0, len(contracts), batch):
            chunk = contracts[start : start + batch]
            answers = await asyncio.gather(
                *(self.details(c, f"{subject} {c.localSymbol or c.symbol}") for c in chunk),
                return_exceptions=True,
            )
            for answer in answers:
                if isinstance(answer, BaseException) and not isinstance(answer, errors.IBWError):
                    raise answer
                results.append(answer)
        return results

    async def matching_symbols(self, pattern: str) -> list[ContractDescription]:
        found = await self.call(self.ib.reqMatchingSymbolsAsync(pattern), f"pattern {pattern}")
        return list(found or [])

    async def option_parameters(self, underlying: Contract) -> list[OptionChain]:
        coro = self.ib.reqSecDefOptParamsAsync(
            underlying.symbol, "", underlying.secType, underlying.conId
        )
        return list(await self.call(coro, f"option parameters of {underlying.symbol}"))

    async def last_close(self, contract: Contract) -> float | None:
        """The latest daily close: the reference price for a chain's moneyness window."""
        bars = await self.call(
            self.ib.reqHistoricalDataAsync(
                contract, "", "5 D", "1 day", "TRADES", True, 1, timeout=self.request_timeout
            ),
            f"last price of {contract.symbol}",
        )
        return float(bars[-1].close) if bars else None
