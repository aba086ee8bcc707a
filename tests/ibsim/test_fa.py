"""The Financial Advisor configuration: requestFA (groups, profiles, aliases) and replaceFA, with
ib_async and the official client, on the FA_MASTER scenario and on a single account."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml
from ib_async import IB

from ibsim import cli as gateway_cli
from ibsim.accounts.book import Book, FAGroup
from ibsim.handlers import fa
from tests.kit.gateway import Errors
from tests.kit.ibapi_harness import IBApiApp
from tests.kit.processes import ROOT, OutputWatcher, free_port
from tests.kit.scenarios import FA_MASTER, SUBS
from tests.kit.waiting import ib_until

NOT_FA = "FA data operations ignored for non FA customers."


def replace_ends(ib: IB) -> list[tuple[int, str]]:
    """replaceFAEnd callbacks: ib_async decodes message 103 but its wrapper has no handler."""
    ends: list[tuple[int, str]] = []
    ib.wrapper.replaceFAEnd = lambda req_id, text: ends.append((req_id, text))
    return ends


# ----------------------------------------------------------------------------- requestFA
def test_groups_xml_holds_exactly_the_scenarios_groups(fa_gateway, connect):
    ib = connect(fa_gateway)
    root = ET.fromstring(ib.requestFA(1).strip())
    assert root.tag == "ListOfGroups"
    groups = {}
    for g in root.findall("Group"):
        accounts = [
            (a.findtext("acct"), a.findtext("amount"))
            for a in g.findall("ListOfAccts[@varName='list']/Account")
        ]
        groups[g.findtext("name")] = (g.findtext("defaultMethod"), accounts)
    assert groups == {
        "Everyone": ("NetLiq", [(SUBS[0], None), (SUBS[1], None), (SUBS[2], None)]),
        "Pair": ("Percent", [(SUBS[0], "70.0"), (SUBS[1], "30.0")]),
    }


def test_profiles_xml_holds_the_scenarios_profile(fa_gateway, connect):
    ib = connect(fa_gateway)
    root = ET.fromstring(ib.requestFA(2).strip())
    assert root.tag == "ListOfAllocationProfiles"
    [profile] = root.findall("AllocationProfile")
    assert profile.findtext("name") == "Tilted"
    assert profile.findtext("type") == "1"
    allocations = {
        a.findtext("acct"): float(a.findtext("amount"))
        for a in profile.findall("ListOfAllocations[@varName='listOfAllocations']/Allocation")
    }
    assert allocations == {SUBS[0]: 50.0, SUBS[1]: 30.0, SUBS[2]: 20.0}


def test_aliases_xml_names_every_sub_account(fa_gateway, connect):
    ib = connect(fa_gateway)
    root = ET.fromstring(ib.requestFA(3).strip())
    assert root.tag == "ListOfAccountAliases"
    aliases = {a.findtext("account"): a.findtext("alias") for a in root.findall("AccountAlias")}
    assert aliases == {SUBS[0]: "Growth", SUBS[1]: "Income", SUBS[2]: "Hedge"}


# ----------------------------------------------------------------------------- replaceFA
NEW_GROUPS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListOfGroups><Group><name>Duo</name>'
    '<defaultMethod>Ratio</defaultMethod><ListOfAccts varName="list">'
    f"<Account><acct>{SUBS[1]}</acct><amount>2.0</amount></Account>"
    f"<Account><acct>{SUBS[2]}</acct><amount>1.0</amount></Account>"
    "</ListOfAccts></Group><Group><name>All3</name><defaultMethod>Equal</defaultMethod>"
    '<ListOfAccts varName="list">'
    + "".join(f"<Account><acct>{a}</acct></Account>" for a in SUBS)
    + "</ListOfAccts></Group></ListOfGroups>"
)


def test_replace_fa_changes_the_groups_a_later_request_returns(fa_gateway, connect):
    ib = connect(fa_gateway)
    ends, errors = replace_ends(ib), Errors(ib, farm_notices=False).seen
    ib.replaceFA(1, NEW_GROUPS)
    ib_until(ib, lambda: bool(ends) or bool(errors))
    assert not errors
    assert ends[0][1] == fa.SAVED_TEXT
    assert fa.parse_groups(ib.requestFA(1)) == (
        FAGroup("Duo", "Ratio", (SUBS[1], SUBS[2]), (2.0, 1.0)),
        FAGroup("All3", "Equal", SUBS),
    )
    # the Book is the gateway's: another client sees the new groups too
    other = connect(fa_gateway)
    assert [g.name for g in fa.parse_groups(other.requestFA(1))] == ["Duo", "All3"]
    assert fa_gateway.gateway.book.groups[0].name == "Duo"


def test_replace_fa_end_carries_the_request_id(fa_gateway, connect):
    ib = connect(fa_gateway)
    ends = replace_ends(ib)
    ib.client.replaceFA(4242, 1, NEW_GROUPS)
    ib_until(ib, lambda: bool(ends))
    assert ends == [(4242, fa.SAVED_TEXT)]


@pytest.mark.parametrize("fa_type", [2, 3])
def test_replace_fa_of_profiles_or_aliases_gets_585(fa_gateway, connect, fa_type):
    ib = connect(fa_gateway)
    errors = Errors(ib, farm_notices=False).seen
    ib.client.replaceFA(77, fa_type, fa.aliases_xml({SUBS[0]: "Renamed"}))
    ib_until(ib, lambda: bool(errors))
    assert errors == [(77, 585, "FA Profile is not supported anymore, use FA Group instead")]
    assert ET.fromstring(ib.requestFA(3).strip()).findtext("AccountAlias/alias") == "Growth"


@pytest.mark.parametrize(
    "xml",
    [
        "<ListOfGroups><Group>",  # does not parse
        "<ListOfAccountAliases/>",  # not groups
        NEW_GROUPS.replace("Ratio", "Astrology"),  # unknown method
        NEW_GROUPS.replace(SUBS[2], "DU999"),  # not this login's account
    ],
)
def test_replace_fa_with_bad_groups_is_refused_and_changes_nothing(fa_gateway, connect, xml):
    ib = connect(fa_gateway)
    errors, ends = Errors(ib, farm_notices=False).seen, replace_ends(ib)
    before = fa_gateway.gateway.book.groups
    ib.client.replaceFA(78, 1, xml)
    ib_until(ib, lambda: bool(errors))
    assert [(r, c) for r, c, _ in errors] == [(78, 320)]
    assert not ends
    assert fa.parse_groups(ib.requestFA(1)) == before


# ----------------------------------------------------------------------------- a single account
def test_single_account_is_refused_fa_requests(single_gateway, connect):
    ib = connect(single_gateway)
    errors = Errors(ib, farm_notices=False).seen
    ib.client.requestFA(1)
    ib.client.replaceFA(79, 1, NEW_GROUPS)
    ib_until(ib, lambda: len(errors) >= 2)
    assert [(r, c) for r, c, _ in errors] == [(-1, 321), (79, 321)]
    assert all(text.endswith(f"cause - {NOT_FA}") for _, _, text in errors)
    assert single_gateway.gateway.book.groups == ()


# ----------------------------------------------------------------------------- the XML itself
def test_build_then_parse_gives_back_the_same_configuration():
    book = Book.from_scenario(FA_MASTER)
    assert fa.parse_groups(fa.groups_xml(book.groups)) == book.groups
    assert fa.parse_profiles(fa.profiles_xml(book.profiles)) == book.profiles
    assert fa.parse_aliases(fa.aliases_xml(book.aliases)) == book.aliases
    assert fa.parse_groups(fa.groups_xml(())) == ()


def test_the_old_groups_shape_is_read_too():
    old = (
        '<ListOfGroups><Group><name>Old</name><ListOfAccts varName="list">'
        f"<String>{SUBS[0]}</String><String>{SUBS[1]}</String></ListOfAccts>"
        "<defaultMethod>EqualQuantity</defaultMethod></Group></ListOfGroups>"
    )
    assert fa.parse_groups(old) == (FAGroup("Old", "Equal", (SUBS[0], SUBS[1])),)


# ----------------------------------------------------------------------------- the official client
class FAApp(IBApiApp):
    def receiveFA(self, faData: int, cxml: str) -> None:
        self._put("receiveFA", "receiveFA", faData, cxml)

    def replaceFAEnd(self, reqId: int, text: str) -> None:
        self._put(reqId, "replaceFAEnd", text)


def test_official_client_decodes_receive_fa_and_replace_fa_end(fa_gateway):
    app = FAApp().start(fa_gateway.port)
    try:
        app.requestFA(3)
        fa_type, xml = app.next_event("receiveFA").args
        assert fa_type == 3
        assert fa.parse_aliases(xml)[SUBS[1]] == "Income"
        app.replaceFA(91, 1, NEW_GROUPS)
        assert app.collect(91, "replaceFAEnd").one("replaceFAEnd") == (fa.SAVED_TEXT,)
        app.requestFA(1)
        assert [g.name for g in fa.parse_groups(app.next_event("receiveFA").args[1])] == [
            "Duo",
            "All3",
        ]
        assert not app.decode_failures
    finally:
        app.close()


def test_requests_on_one_client_do_not_disturb_another(fa_gateway, connect):
    """Two clients asking at once each get their own answer (requestFA has no request id)."""
    first, second = connect(fa_gateway), connect(fa_gateway)

    async def both():
        return await asyncio.gather(first.requestFAAsync(1), second.requestFAAsync(3))

    groups, aliases = first.run(both())
    assert ET.fromstring(groups.strip()).tag == "ListOfGroups"
    assert ET.fromstring(aliases.strip()).tag == "ListOfAccountAliases"


# ---------------------------------------------------------------------- ibw gateway --scenario
@pytest.mark.slow
def test_gateway_command_serves_a_scenario_file(tmp_path):
    scenario = tmp_path / "fa.yml"
    scenario.write_text(yaml.safe_dump(FA_MASTER))
    port = free_port()
    command = [sys.executable, "-m", "ibsim", "--port", str(port), "--scenario", str(scenario)]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        output = OutputWatcher(proc)
        try:
            output.wait_for(f"listening on 127.0.0.1:{port}")
            ib = IB()
            ib.connect("127.0.0.1", port, clientId=6, timeout=10)
            assert ib.managedAccounts() == [FA_MASTER["master"], *SUBS]
            assert [g.name for g in fa.parse_groups(ib.requestFA(1))] == ["Everyone", "Pair"]
            ib.disconnect()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()  # by its pid
                proc.wait(timeout=10)
        output.finish()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "Cannot read the scenario"),
        ("accounts: [unclosed", "is not valid YAML at line 1"),
        ("- just\n- a list\n", "has no `accounts:` list"),
        ("accounts:\n  - {alias: NoId}\n", "lacks the field 'id'"),
        ("accounts: [{id: DU1}]\npositions: [{account: DU1, colour: red}]\n", "does not fit"),
    ],
)
def test_gateway_command_explains_a_bad_scenario_in_one_sentence(tmp_path, capsys, content, says):
    scenario = tmp_path / "bad.yml"
    if content is not None:
        scenario.write_text(content)
    assert gateway_cli.main(["--port", "0", "--scenario", str(scenario)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and str(scenario) in err
    assert "\n" not in err and "Traceback" not in err
