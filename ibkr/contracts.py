"""Resolving universe entries into IB contracts: details by symbol, pattern, root, pair, index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ib_async import Contract, ContractDetails

from ibkr import errors
from ibkr.client import IBClient
from ibkr.universe import UniverseEntry


@dataclass
class Resolution:
    """What one entry resolved to: contracts, or the one-sentence reason it did not."""

    entry: UniverseEntry
    details: list[ContractDetails]
    error: errors.IBWError | None = None


def describe(contract: Contract) -> str:
    parts = [contract.localSymbol or contract.symbol, contract.secType, contract.exchange]
    if contract.lastTradeDateOrContractMonth:
        parts.append(contract.lastTradeDateOrContractMonth)
    return f"{' '.join(p for p in parts if p)} (conId {contract.conId})"


def request_contract(entry: UniverseEntry) -> Contract:
    """The contract the entry asks reqContractDetails about."""
    if entry.kind == "fx":
        base, quote = entry.value.split(".", 1)
        return Contract(symbol=base, secType="CASH", exchange=entry.exchange, currency=quote)
    return Contract(
        symbol=entry.value,
        secType=entry.sec_type,
        exchange=entry.exchange,
        currency=entry.currency,
        primaryExchange=entry.primary_exchange,
        includeExpired=entry.kind == "future" and entry.expired_years > 0,
    )


async def resolve(client: IBClient, entry: UniverseEntry, now: datetime) -> Resolution:
    try:
        if entry.kind == "pattern":
            details = await _by_pattern(client, entry)
        else:
            details = await client.details(request_contract(entry), entry.name)
            if entry.kind == "future":
                details = _within_years(details, entry.expired_years, now)
            elif len(details) > 1:
                candidates = [describe(d.contract) for d in details]
                raise errors.AmbiguousContract(subject=entry.name, candidates=candidates)
    except errors.IBWError as exc:
        return Resolution(entry, [], exc)
    if not details:
        return Resolution(entry, [], errors.ContractNotFound(subject=entry.name))
    return Resolution(entry, details)


async def _by_pattern(client: IBClient, entry: UniverseEntry) -> list[ContractDetails]:
    """reqMatchingSymbols, then details of each match of the entry's type and currency."""
    matches = [
        d.contract
        for d in await client.matching_symbols(entry.value)
        if d.contract.secType == entry.sec_type and d.contract.currency == entry.currency
    ]
    details: list[ContractDetails] = []
    for contract in matches:
        query = Contract(conId=contract.conId, exchange=entry.exchange)
        details += await client.details(query, f"{entry.name}: {contract.symbol}")
    return details


def _within_years(
    details: list[ContractDetails], years: int, now: datetime
) -> list[ContractDetails]:
    """Live futures, plus expired ones whose last trade is at most `years` back."""
    oldest = f"{now - timedelta(days=365 * years):%Y%m%d}"
    return [d for d in details if d.contract.lastTradeDateOrContractMonth[:8] >= oldest]
