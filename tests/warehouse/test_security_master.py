"""`merge_versions`: the security master's history of each conId, as a pure function."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kit.warehouse import T1, T2, T3, contracts
from warehouse.security_master import merge_versions
from warehouse.validation import split_valid

AAPL, SPY, META = 265598, 756733, 107113386


def versions(history: pl.DataFrame, con_id: int) -> list[dict]:
    keep = ["symbol", "valid_from", "valid_to", "first_seen", "last_seen", "request_id"]
    return history.filter(pl.col("con_id") == con_id).select(keep).to_dicts()


def test_new_contracts_open_their_first_version():
    history = merge_versions(pl.DataFrame(), contracts(), T1)
    assert history.get_column("con_id").to_list() == [AAPL, SPY]
    assert versions(history, AAPL) == [
        {
            "symbol": "AAPL",
            "valid_from": T1,
            "valid_to": None,
            "first_seen": T1,
            "last_seen": T1,
            "request_id": "req-1",
        }
    ]
    valid, rejected = split_valid(history, "security_master", "contracts")
    assert rejected.is_empty() and valid.height == 2


def test_an_unchanged_contract_keeps_its_version_and_bumps_last_seen():
    history = merge_versions(pl.DataFrame(), contracts(), T1)
    history = merge_versions(history, contracts(request_id="req-2"), T2)
    assert versions(history, AAPL) == [
        {
            "symbol": "AAPL",
            "valid_from": T1,
            "valid_to": None,
            "first_seen": T1,
            "last_seen": T2,
            "request_id": "req-2",
        }
    ]


def test_a_symbol_change_closes_the_old_version_and_opens_a_new_one():
    history = merge_versions(pl.DataFrame(), contracts({META: "FB"}), T1)
    history = merge_versions(history, contracts({META: "FB"}), T2)
    history = merge_versions(history, contracts({META: "META"}, request_id="req-3"), T3)
    assert versions(history, META) == [
        {
            "symbol": "FB",
            "valid_from": T1,
            "valid_to": T3,
            "first_seen": T1,
            "last_seen": T2,
            "request_id": "req-1",
        },
        {
            "symbol": "META",
            "valid_from": T3,
            "valid_to": None,
            "first_seen": T1,
            "last_seen": T3,
            "request_id": "req-3",
        },
    ]
    assert split_valid(history, "security_master", "contracts")[1].is_empty()


def test_contracts_not_observed_are_kept_unchanged():
    history = merge_versions(pl.DataFrame(), contracts(), T1)
    later = merge_versions(history, contracts({SPY: "SPY"}), T2)
    assert later.filter(pl.col("con_id") == AAPL).equals(history.filter(pl.col("con_id") == AAPL))


def test_merging_the_same_observation_twice_changes_nothing():
    history = merge_versions(pl.DataFrame(), contracts({META: "FB", AAPL: "AAPL"}), T1)
    once = merge_versions(history, contracts({META: "META", AAPL: "AAPL"}), T2)
    twice = merge_versions(once, contracts({META: "META", AAPL: "AAPL"}), T2)
    assert twice.equals(once)


def test_a_second_different_observation_at_the_same_instant_replaces_the_first():
    history = merge_versions(pl.DataFrame(), contracts({META: "FB"}), T1)
    history = merge_versions(history, contracts({META: "META"}), T2)
    history = merge_versions(history, contracts({META: "META2"}), T2)
    assert [(v["symbol"], v["valid_to"]) for v in versions(history, META)] == [
        ("FB", T2),
        ("META2", None),
    ]


@pytest.mark.parametrize(
    ("observed", "seen_at", "message"),
    [
        (contracts({AAPL: "AAPL"}), T1, "earlier than the current version"),
        (pl.concat([contracts({AAPL: "A"}), contracts({AAPL: "B"})]), T3, "several rows"),
        (contracts(), T3.replace(tzinfo=None), "timezone-aware"),
    ],
    ids=["out-of-order", "duplicate-con-id", "naive-time"],
)
def test_observations_that_would_corrupt_the_history_are_refused(observed, seen_at, message):
    history = merge_versions(pl.DataFrame(), contracts(), T2)
    with pytest.raises(ValueError, match=message):
        merge_versions(history, observed, seen_at)


observations = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from([1, 2, 3, 4]), st.sampled_from(["A", "B", "C"])),
        st.integers(min_value=0, max_value=2),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(observations)
def test_any_sequence_keeps_every_con_id_with_exactly_one_current_version(steps):
    history, seen_at, ever_seen, latest = pl.DataFrame(), T1, set(), {}
    for symbols, gap_days in steps:
        seen_at += timedelta(days=gap_days)
        if symbols:
            history = merge_versions(history, contracts(symbols), seen_at)
        ever_seen |= set(symbols)
        latest |= symbols
    if not ever_seen:
        return
    assert set(history.get_column("con_id")) == ever_seen
    current = history.filter(pl.col("valid_to").is_null())
    assert sorted(current.get_column("con_id")) == sorted(ever_seen)
    assert dict(current.select("con_id", "symbol").iter_rows()) == latest
    assert history.equals(history.sort("con_id", "valid_from"))
    assert split_valid(history, "security_master", "property")[1].is_empty()
