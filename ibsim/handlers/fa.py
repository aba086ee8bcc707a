"""The Financial Advisor configuration: requestFA (groups, profiles, aliases as IB's XML) and
replaceFA (groups only), from and into the gateway's Book (IB's Financial Advisor pages).

Wire (server version 178, checked against both clients' decoders):
    requestFA   in   18 | 1 | faDataType                  (1 groups, 2 profiles, 3 aliases)
    receiveFA   out  16 | 1 | faDataType | xml
    replaceFA   in   19 | 1 | faDataType | xml | reqId    (reqId last, from server version 157)
    replaceFAEnd out 103 | reqId | text                   (no version field)

Refusals:
- A login that is not an advisor's (no `book.master`): 321 `Error validating request.-'b9' :
  cause - FA data operations ignored for non FA customers.` (requestFA, reqId -1) and `...-'b1'
  ...` (replaceFA, its reqId). Code and cause from captures quoted in public client code (ibx's
  REQUEST_FA_NOT_FA / REPLACE_FA_NOT_FA; a Go client routing the same cause with tag 'b4' at server
  version 207). The tag differs between builds; clients should match the cause. ibx gives the
  requestFA refusal reqId 2147483647, the Go client sees it without one; we send -1.
- replaceFA of any type but 1: 585 `FA Profile is not supported anymore, use FA Group instead`
  (IB's "Message Codes"; ibapi raises the same code client-side for type 2).
- replaceFA XML that does not parse, or names an unknown method or account: 320 (the
  simulator's code for a request it cannot read; IB's own answer is not documented).

requestFA(2) is still answered (ib_async sends it; ibapi refuses it client-side with 585 from
server version 177). The save is immediate, so IB's 10230 (a requestFA while a replaceFA is
being saved) never happens here. The replaceFAEnd text is not documented; ours is
`Groups saved` (⚠ unverified).

The XML's tags, the allocation methods and the reader are IB's facts (`ibfacts.fa`), shared with
the client; what this gateway accepts on top of them (a named group, a known method, the
login's accounts, numeric amounts) is its own check.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping

from ibfacts import fa
from ibfacts.fa import ALIASES, GROUPS, METHODS, OLD_METHODS, PROFILES, FAXMLError
from ibsim.accounts.book import FAGroup, FAProfile
from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader
from ibsim.market import errors
from ibsim.market.errors import IBError

log = logging.getLogger("ibsim")

_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'

NOT_FA_CAUSE = "FA data operations ignored for non FA customers."
REQUEST_NOT_FA = IBError(321, f"Error validating request.-'b9' : cause - {NOT_FA_CAUSE}")
REPLACE_NOT_FA = IBError(321, f"Error validating request.-'b1' : cause - {NOT_FA_CAUSE}")
PROFILES_NOT_SUPPORTED = IBError(585, "FA Profile is not supported anymore, use FA Group instead")
SAVED_TEXT = "Groups saved"


# ----------------------------------------------------------------------------- building
def groups_xml(groups: Iterable[FAGroup]) -> str:
    """The new groups XML: name, defaultMethod, and each account with its amount if it has one."""
    root = ET.Element(fa.GROUPS_ROOT)
    for group in groups:
        node = ET.SubElement(root, fa.GROUP)
        ET.SubElement(node, fa.GROUP_NAME).text = group.name
        ET.SubElement(node, fa.METHOD).text = group.method
        accounts = ET.SubElement(node, fa.ACCOUNTS, varName="list")
        for i, account in enumerate(group.accounts):
            entry = ET.SubElement(accounts, fa.ACCOUNT)
            ET.SubElement(entry, fa.ACCOUNT_ID).text = account
            if i < len(group.amounts):
                ET.SubElement(entry, fa.AMOUNT).text = _number(group.amounts[i])
    return _text(root)


def profiles_xml(profiles: Iterable[FAProfile]) -> str:
    """The old allocation profiles XML: name, type (1 %, 2 ratios, 3 shares), allocations."""
    root = ET.Element(fa.PROFILES_ROOT)
    for profile in profiles:
        node = ET.SubElement(root, fa.PROFILE)
        ET.SubElement(node, fa.PROFILE_NAME).text = profile.name
        ET.SubElement(node, fa.PROFILE_TYPE).text = str(profile.type)
        allocations = ET.SubElement(node, fa.ALLOCATIONS, varName="listOfAllocations")
        for account, amount in profile.allocations.items():
            entry = ET.SubElement(allocations, fa.ALLOCATION)
            ET.SubElement(entry, fa.ACCOUNT_ID).text = account
            ET.SubElement(entry, fa.AMOUNT).text = _number(amount)
    return _text(root)


def aliases_xml(aliases: Mapping[str, str]) -> str:
    root = ET.Element(fa.ALIASES_ROOT)
    for account, alias in aliases.items():
        node = ET.SubElement(root, fa.ALIAS_ENTRY)
        ET.SubElement(node, fa.ALIAS_ACCOUNT).text = account
        ET.SubElement(node, fa.ALIAS).text = alias
    return _text(root)


def _number(value: float) -> str:
    return repr(float(value))


def _text(root: ET.Element) -> str:
    ET.indent(root)
    return _HEADER + ET.tostring(root, encoding="unicode") + "\n"


# ----------------------------------------------------------------------------- parsing
def parse_groups(xml: str, known_accounts: Iterable[str] | None = None) -> tuple[FAGroup, ...]:
    """Read a groups XML (the new shape, or the old one with `<String>` accounts).

    Raises FAXMLError for empty text, XML that does not parse, a group without a name, an
    unknown method, or (when `known_accounts` is given) an account the login does not have.
    """
    if not xml.strip():
        raise FAXMLError("the XML is empty")
    known = None if known_accounts is None else set(known_accounts)
    groups = []
    for group in fa.read_groups(xml):
        if not group.name:
            raise FAXMLError("a Group has no name")
        method = OLD_METHODS.get(group.method, group.method)
        if method not in METHODS:
            raise FAXMLError(f"group {group.name}: unknown defaultMethod {method!r}")
        accounts = tuple(member.account for member in group.members)
        for account in accounts:
            if not account or (known is not None and account not in known):
                raise FAXMLError(f"group {group.name}: unknown account {account!r}")
        amounts = _amounts(group.name, [member.amount for member in group.members])
        groups.append(FAGroup(group.name, method, accounts, amounts))
    return tuple(groups)


def parse_profiles(xml: str) -> tuple[FAProfile, ...]:
    return tuple(
        FAProfile(
            profile.name,
            int(profile.type),
            {a.account: float(a.amount or 0) for a in profile.allocations},
        )
        for profile in fa.read_profiles(xml)
    )


def parse_aliases(xml: str) -> dict[str, str]:
    return dict(fa.read_aliases(xml))


def _amounts(name: str, raw: list[str]) -> tuple[float, ...]:
    """Per-account amounts, or () when no account has one (a missing one then counts 0)."""
    if not any(raw):
        return ()
    try:
        return tuple(float(x) if x else 0.0 for x in raw)
    except ValueError:
        raise FAXMLError(f"group {name}: an amount is not a number") from None


# ----------------------------------------------------------------------------- handlers
def request_fa(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    fa_type = msg.int()
    book = client.state.book
    if not book.master:
        raise REQUEST_NOT_FA
    if fa_type == GROUPS:
        xml = groups_xml(book.groups)
    elif fa_type == PROFILES:
        xml = profiles_xml(book.profiles)
    elif fa_type == ALIASES:
        xml = aliases_xml(book.aliases)
    else:
        raise errors.bad_request(f"faDataType {fa_type} is not 1, 2 or 3")
    client.send(16, 1, fa_type, xml)


def replace_fa(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    fa_type, xml = msg.int(), msg.str()
    msg.request_id()  # last on the wire, and where the errors go
    book = client.state.book
    if not book.master:
        raise REPLACE_NOT_FA
    if fa_type != GROUPS:
        raise PROFILES_NOT_SUPPORTED
    try:
        groups = parse_groups(xml, (a.id for a in book.accounts))
    except FAXMLError as exc:
        raise errors.bad_request(f"replaceFA groups: {exc}") from None
    book.groups = groups
    log.info("client %s replaced the FA groups: %s", client.client_id,
             ", ".join(g.name for g in groups) or "none")  # fmt: skip
    client.send(103, msg.req_id, SAVED_TEXT)
