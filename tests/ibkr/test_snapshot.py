"""The snapshot's pure parts: IB's reset windows per region, and the FA XML IB sends."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from ibkr.restarts import RESET_WINDOWS, snapshot_time
from ibkr.snapshot import fa_aliases, fa_groups, fa_profiles, number

NEW_GROUPS = """<?xml version="1.0" encoding="UTF-8"?><ListOfGroups><Group><name>Everyone</name>
<defaultMethod>NetLiq</defaultMethod><ListOfAccts varName="list"><Account><acct>DU1</acct>
</Account><Account><acct>DU2</acct><amount>30.0</amount></Account></ListOfAccts></Group>
</ListOfGroups>"""
OLD_GROUPS = """<ListOfGroups><Group><name>Old</name><ListOfAccts varName="list">
<String>DU1</String><String>DU2</String></ListOfAccts><defaultMethod>EqualQuantity</defaultMethod>
</Group></ListOfGroups>"""
PROFILES = """<ListOfAllocationProfiles><AllocationProfile><name>P</name><type>1</type>
<ListOfAllocations varName="listOfAllocations"><Allocation><acct>DU1</acct><amount>60.0</amount>
</Allocation></ListOfAllocations></AllocationProfile></ListOfAllocationProfiles>"""
ALIASES = """<ListOfAccountAliases><AccountAlias><account>DU1</account><alias>Growth</alias>
</AccountAlias></ListOfAccountAliases>"""


def test_fa_xml_in_both_group_shapes_profiles_and_aliases():
    assert fa_groups(NEW_GROUPS) == [
        {"group_name": "Everyone", "method": "NetLiq", "account": "DU1", "amount": None},
        {"group_name": "Everyone", "method": "NetLiq", "account": "DU2", "amount": 30.0},
    ]
    assert [r["account"] for r in fa_groups(OLD_GROUPS)] == ["DU1", "DU2"]
    assert fa_profiles(PROFILES) == [{"profile": "P", "type": 1, "account": "DU1", "amount": 60.0}]
    assert fa_aliases(ALIASES) == [{"account": "DU1", "alias": "Growth"}]
    assert fa_groups("") == []


@pytest.mark.parametrize(
    ("value", "stored"), [(1.7976931348623157e308, None), (float("nan"), None), (2.5, 2.5)]
)
def test_ibs_no_value_is_null_never_zero(value, stored):
    assert number(value) == stored


def test_the_north_american_window_and_the_snapshot_after_it():
    window = RESET_WINDOWS["north_america"]
    assert window.contains(datetime(2024, 7, 10, 4, 30, tzinfo=UTC))  # 00:30 New York
    assert not window.contains(datetime(2024, 7, 10, 6, 0, tzinfo=UTC))  # 02:00 New York
    end = window.ends_at(datetime(2024, 7, 10, 4, 30, tzinfo=UTC))
    assert end == datetime(2024, 7, 10, 5, 45, tzinfo=UTC)
    assert snapshot_time("north_america") == (time(2, 0), "America/New_York")
    assert snapshot_time("europe") == (time(8, 0), "Europe/Zurich")


def test_an_unknown_region_names_the_choices():
    with pytest.raises(ValueError, match="use one of north_america, europe, asia or none"):
        snapshot_time("mars")
