"""IB's Financial Advisor XML: the tags of groups, allocation profiles and account aliases, the
allocation methods, and one tolerant reader both the client and the gateway use.

Sources: IB's TWS API documentation, "Financial Advisors" (requestFA and replaceFA, the groups
XML with its defaultMethod values, and the older allocation profiles;
https://interactivebrokers.github.io/tws-api/financial_advisor_methods_and_orders.html and the
same section on https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/), and the
decoders of the official ibapi client (EClient.requestFA/replaceFA). IB sends groups in two
shapes: the current one lists `<Account><acct>…</acct><amount>…</amount></Account>`, the old
one bare `<String>…</String>` account ids.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

# faDataType of requestFA / replaceFA; profiles are refused by replaceFA (585) since IB moved
# allocations into groups.
GROUPS, PROFILES, ALIASES = 1, 2, 3

# The groups XML, current shape: ListOfGroups/Group/{name, defaultMethod,
# ListOfAccts/Account/{acct, amount}}; the old shape lists ListOfAccts/String instead.
GROUPS_ROOT = "ListOfGroups"
GROUP = "Group"
GROUP_NAME = "name"
METHOD = "defaultMethod"
ACCOUNTS = "ListOfAccts"
ACCOUNT = "Account"
ACCOUNT_ID = "acct"
AMOUNT = "amount"
OLD_ACCOUNT = "String"
# ListOfAllocationProfiles/AllocationProfile/{name, type, ListOfAllocations/Allocation/{acct,
# amount}}
PROFILES_ROOT = "ListOfAllocationProfiles"
PROFILE = "AllocationProfile"
PROFILE_NAME = "name"
PROFILE_TYPE = "type"
ALLOCATIONS = "ListOfAllocations"
ALLOCATION = "Allocation"
# ListOfAccountAliases/AccountAlias/{account, alias}
ALIASES_ROOT = "ListOfAccountAliases"
ALIAS_ENTRY = "AccountAlias"
ALIAS_ACCOUNT = "account"
ALIAS = "alias"

# The groups XML's defaultMethod values; the old name of one maps onto its new one.
METHODS = ("NetLiq", "AvailableEquity", "Equal", "ContractsOrShares", "MonetaryAmount",
           "Percent", "Ratio", "PctChange")  # fmt: skip
OLD_METHODS = {"EqualQuantity": "Equal"}


class FAXMLError(ValueError):
    """FA XML that does not parse, or whose root is not the list asked for."""


@dataclass(frozen=True)
class Member:
    """One account of a group or profile, with its amount as IB wrote it ("" when none)."""

    account: str
    amount: str = ""


@dataclass(frozen=True)
class Group:
    """One FA group as written: the method is IB's text (old names not mapped)."""

    name: str
    method: str
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Profile:
    """One allocation profile as written; `type` is 1 (percent), 2 (ratios) or 3 (shares)."""

    name: str
    type: str
    allocations: tuple[Member, ...]


def read_groups(xml: str) -> tuple[Group, ...]:
    """Every group of a groups XML, in either shape; empty text reads as no groups."""
    groups = []
    for node in _root(xml, GROUPS_ROOT).iter(GROUP):
        members = []
        for entry in node.iter():
            if entry.tag == ACCOUNT:
                members.append(Member(_text(entry, ACCOUNT_ID), _text(entry, AMOUNT)))
            elif entry.tag == OLD_ACCOUNT:
                members.append(Member((entry.text or "").strip()))
        groups.append(Group(_text(node, GROUP_NAME), _text(node, METHOD), tuple(members)))
    return tuple(groups)


def read_profiles(xml: str) -> tuple[Profile, ...]:
    """Every allocation profile of a profiles XML; empty text reads as no profiles."""
    return tuple(
        Profile(
            _text(node, PROFILE_NAME),
            _text(node, PROFILE_TYPE),
            tuple(Member(_text(a, ACCOUNT_ID), _text(a, AMOUNT)) for a in node.iter(ALLOCATION)),
        )
        for node in _root(xml, PROFILES_ROOT).iter(PROFILE)
    )


def read_aliases(xml: str) -> tuple[tuple[str, str], ...]:
    """(account, alias) pairs of an aliases XML, in order; empty text reads as none."""
    return tuple(
        (_text(node, ALIAS_ACCOUNT), _text(node, ALIAS))
        for node in _root(xml, ALIASES_ROOT).iter(ALIAS_ENTRY)
    )


def _root(xml: str, tag: str) -> ET.Element:
    if not xml.strip():
        return ET.Element(tag)
    try:
        root = ET.fromstring(xml.strip())
    except ET.ParseError as exc:
        raise FAXMLError(f"the XML does not parse ({exc})") from None
    if root.tag != tag:
        raise FAXMLError(f"the XML's root is <{root.tag}>, not <{tag}>")
    return root


def _text(node: ET.Element, tag: str) -> str:
    return (node.findtext(tag) or "").strip()
