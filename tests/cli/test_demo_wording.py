"""The demo's reconciliation lines (issue 14): the demo accounts' seeded orders, which the live
service's fresh journal never sent, are said to be the seeded accounts' own orders, not errors;
any other difference still reaches the log as the service wrote it."""

from __future__ import annotations

import logging

import pytest

from cli.demo import SeededOrders
from cli.dev import DEMO_ACCOUNTS
from ibsim.accounts.book import Book
from ibsim.cli import load_scenario
from live.journal import Journal
from live.reconcile import reconcile


@pytest.fixture
def demo_book() -> Book:
    return load_scenario(DEMO_ACCOUNTS)


def test_the_seeded_orders_are_recognised_and_held_back(make_gateway, connect, demo_book, tmp_path):
    gw = make_gateway(book=load_scenario(DEMO_ACCOUNTS))
    ib = connect(gw)
    journal = Journal(tmp_path / "journal.sqlite")
    heard: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: heard.append(record.getMessage())
    logging.getLogger("ibw.live.orders").addHandler(handler)
    try:
        with SeededOrders(demo_book) as seeded:
            result = ib.run(reconcile(ib, journal))
    finally:
        logging.getLogger("ibw.live.orders").removeHandler(handler)
    assert {d.kind for d in result.differences} == {"unknown_order"}  # the service is unchanged
    assert seeded.found == [1800000005, 1800000006]  # the filled BUY and the take-profit
    assert not [line for line in heard if line.startswith("reconciliation difference")]


def test_a_difference_about_anything_else_still_reaches_the_log(demo_book):
    seeded = SeededOrders(demo_book)
    other = logging.LogRecord(
        "ibw.live.orders", logging.WARNING, __file__, 1, "reconciliation difference: %s",
        ("the gateway holds order permId 42 (BUY 1 MKT) that the journal does not know",), None,
    )  # fmt: skip
    assert seeded.filter(other) and seeded.found == []
