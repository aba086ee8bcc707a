"""IB's facts package: its tables are consistent, its FA reader is tolerant, and it needs nothing
but the standard library."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from ibfacts import bars, fa, history, messages, pacing, resets, venues

PACKAGE = Path(__file__).resolve().parents[2] / "ibfacts"

SIZES = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30, "1 min": 60,
    "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1_200, "30 mins": 1_800, "1 hour": 3_600, "2 hours": 7_200, "3 hours": 10_800,
    "4 hours": 14_400, "8 hours": 28_800, "1 day": 86_400, "1 week": 604_800,
    "1 month": 2_592_000,
}  # fmt: skip


# ------------------------------------------------------------------- standard library only
def test_the_package_imports_only_the_standard_library():
    outside = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            outside |= {
                f"{path.name}: {name}"
                for name in names
                if name.split(".")[0] not in sys.stdlib_module_names | {"__future__", "ibfacts"}
            }
    assert not outside


# ------------------------------------------------------------------- bars
@pytest.mark.parametrize(("size", "seconds"), SIZES.items())
def test_every_bar_size_and_its_seconds(size, seconds):
    assert bars.BAR_SECONDS[size] == seconds
    assert bars.is_small_bar(size) == (seconds <= 30)


def test_the_bar_sizes_are_ibs_21_in_increasing_order():
    assert list(bars.BAR_SECONDS) == list(SIZES)
    seconds = list(bars.BAR_SECONDS.values())
    assert seconds == sorted(seconds) and len(set(seconds)) == 21


def test_the_step_table_covers_exactly_the_small_bars_and_never_shrinks():
    assert list(bars.SMALL_BAR_STEP) == [s for s in bars.BAR_SECONDS if bars.is_small_bar(s)]
    spans = list(bars.SMALL_BAR_STEP.values())
    assert spans == sorted(spans)
    for size, span in bars.SMALL_BAR_STEP.items():
        assert span % bars.BAR_SECONDS[size] == 0  # a whole number of bars
        assert bars.MIN_SECONDS <= span <= bars.UNIT_LIMITS["S"]


def test_duration_units_and_their_limits():
    assert bars.DURATION_UNITS == "SDWMY"
    assert dict(bars.UNIT_LIMITS) == {"S": 86_400, "D": 365, "W": 52, "M": 12}
    assert bars.MIN_SECONDS == 30 and bars.MAX_BACKFILL_YEARS == 30


# ------------------------------------------------------------------- history and pacing
def test_history_limits():
    assert bars.SMALL_BAR_SECONDS == 30
    assert 180 <= history.SMALL_BAR_MAX_AGE.days <= 184  # six months
    assert history.EXPIRED_FUTURE_YEARS == 2
    assert "OPT" in history.NO_EXPIRED_HISTORY and "FUT" not in history.NO_EXPIRED_HISTORY
    assert sorted(history.NO_END_DATE_SEC_TYPES) == ["CONTFUT"]
    assert sorted(history.NO_END_DATE_WHAT) == ["ADJUSTED_LAST"]


def test_what_to_show_per_security_type():
    table = history.WHAT_TO_SHOW_FOR
    assert "TRADES" not in table["CASH"] and table["IND"] == ("TRADES", *history.VOLATILITY_WHAT)
    assert [t for t, whats in table.items() if "HISTORICAL_VOLATILITY" in whats] == ["STK", "IND"]
    assert [t for t, whats in table.items() if "ADJUSTED_LAST" in whats] == ["STK"]
    assert all(set(whats) <= set(history.WHAT_TO_SHOW) for whats in table.values())


def test_pacing_limits_and_weights():
    assert (pacing.WINDOW_SECONDS, pacing.WINDOW_LIMIT) == (600.0, 60)
    assert (pacing.IDENTICAL_WINDOW_SECONDS, pacing.BURST_WINDOW_SECONDS) == (15.0, 2.0)
    assert (pacing.BURST_LIMIT, pacing.MAX_OPEN_REQUESTS) == (6, 50)
    assert pacing.weight("BID_ASK") == pacing.weight("bid_ask") == 2
    assert pacing.weight("TRADES") == pacing.weight("MIDPOINT") == 1


def test_span_too_long_texts():
    text = "Historical Market Data Service error message:Time length exceed max."
    assert any(marker in text for marker in messages.SPAN_TOO_LONG)


# ------------------------------------------------------------------- venues and resets
def test_venues_by_name():
    assert set(venues.VENUES) == {"us_equity", "us_index", "cme_globex", "nymex_globex",
                                  "fx_idealpro", "crypto_paxos", "us_bond", "fundserv"}  # fmt: skip
    for name, venue in venues.VENUES.items():
        assert venue.name == name
        if venue.rth is not None:
            assert venue.rth[0] < venue.rth[1]
    assert venues.IDEALPRO.calendar is None  # IB's own Monday-to-Friday week
    assert venues.CME.full_start == time(17) and venues.CME.full_end == time(16)


def test_reset_windows():
    window = resets.RESET_WINDOWS["north_america"]
    assert window.contains(datetime(2024, 7, 10, 4, 30, tzinfo=UTC))  # 00:30 New York
    assert not window.contains(datetime(2024, 7, 10, 6, 0, tzinfo=UTC))
    across = resets.ResetWindow(time(23), time(1), "UTC")
    assert across.contains(datetime(2024, 7, 10, 0, 30, tzinfo=UTC))


# ------------------------------------------------------------------- FA XML
NEW = """<?xml version="1.0" encoding="UTF-8"?>
<ListOfGroups>
  <Group>
    <name> Pair </name>
    <defaultMethod>Percent</defaultMethod>
    <ListOfAccts varName="list">
      <Account><acct>DU1</acct><amount>60.0</amount></Account>
      <Account><acct>DU2</acct></Account>
    </ListOfAccts>
  </Group>
</ListOfGroups>"""
OLD = """<ListOfGroups><Group><name>Old</name><ListOfAccts varName="list">
<String> DU1 </String><String>DU2</String></ListOfAccts><defaultMethod>EqualQuantity</defaultMethod>
</Group></ListOfGroups>"""


def test_groups_in_both_shapes():
    (pair,) = fa.read_groups(NEW)
    assert pair == fa.Group("Pair", "Percent", (fa.Member("DU1", "60.0"), fa.Member("DU2")))
    (old,) = fa.read_groups(OLD)
    assert old == fa.Group("Old", "EqualQuantity", (fa.Member("DU1"), fa.Member("DU2")))
    assert fa.OLD_METHODS[old.method] in fa.METHODS


def test_odd_groups_xml():
    assert fa.read_groups("") == fa.read_groups("  \n") == ()
    assert fa.read_groups("<ListOfGroups/>") == ()
    (bare,) = fa.read_groups("<ListOfGroups><Group/></ListOfGroups>")
    assert bare == fa.Group("", "", ())
    with pytest.raises(fa.FAXMLError, match="does not parse"):
        fa.read_groups("<ListOfGroups><Group>")
    with pytest.raises(fa.FAXMLError, match="root"):
        fa.read_groups("<ListOfAccountAliases/>")


def test_profiles_and_aliases():
    profiles = """<ListOfAllocationProfiles><AllocationProfile><name>P</name><type>1</type>
    <ListOfAllocations varName="listOfAllocations"><Allocation><acct>DU1</acct>
    <amount>60.0</amount></Allocation></ListOfAllocations></AllocationProfile>
    </ListOfAllocationProfiles>"""
    assert fa.read_profiles(profiles) == (fa.Profile("P", "1", (fa.Member("DU1", "60.0"),)),)
    aliases = """<ListOfAccountAliases><AccountAlias><account>DU1</account><alias>Growth</alias>
    </AccountAlias><AccountAlias><account>DU2</account></AccountAlias></ListOfAccountAliases>"""
    assert fa.read_aliases(aliases) == (("DU1", "Growth"), ("DU2", ""))
    assert fa.read_profiles("") == () and fa.read_aliases("") == ()
