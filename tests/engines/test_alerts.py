"""The alerter against a local HTTP receiver: one alert per condition and subject until it
clears, then one "resolved"; the state shared by processes (SQLite or PostgreSQL); a failing
channel recorded, never raised; every alert a row of the `alerts` dataset in the catalog."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engines.alerts import Alerter, alert_urls
from warehouse.alerts import read_alerts
from warehouse.catalog import connect_readonly


def test_fires_once_until_resolved_then_resolves_once(tmp_path: Path, receiver) -> None:
    with Alerter(tmp_path, [receiver.url]) as alerter:
        assert alerter.fire("link_lost", "127.0.0.1:4002", "IB unreachable for 60 s.")
        assert not alerter.fire("link_lost", "127.0.0.1:4002", "still unreachable")
        assert alerter.fire("link_lost", "127.0.0.1:4003", "the other gateway too")
        assert set(alerter.active()) == {
            ("link_lost", "127.0.0.1:4002"),
            ("link_lost", "127.0.0.1:4003"),
        }
        assert alerter.resolve("link_lost", "127.0.0.1:4002", "IB is back.")
        assert not alerter.resolve("link_lost", "127.0.0.1:4002")
        assert not alerter.resolve("farm_broken", "usfarm")  # never fired
    messages = receiver.wait_for(3)
    assert len(messages) == 3
    assert messages[0] == "ib-warehouse link_lost fired: 127.0.0.1:4002: IB unreachable for 60 s."
    assert messages[2] == "ib-warehouse link_lost resolved: 127.0.0.1:4002: IB is back."
    rows = read_alerts(tmp_path)
    assert rows["state"].to_list() == ["fired", "fired", "resolved"]
    assert rows["delivered"].all() and rows["channels"].to_list() == [1, 1, 1]
    assert set(rows["source"]) == {"live"}
    con = connect_readonly(tmp_path)
    try:
        assert con.sql("SELECT count(*) FROM alerts").fetchall() == [(3,)]
    finally:
        con.close()


def test_two_alerters_of_one_home_share_what_is_active(tmp_path: Path, receiver) -> None:
    """The live service and a Dagster run: the second fire of one alert sends nothing."""
    with (
        Alerter(tmp_path, [receiver.url]) as live,
        Alerter(tmp_path, [receiver.url], source="dagster") as dagster,
    ):
        assert live.fire("pacing_exhausted", "login a", "budget spent")
        assert not dagster.fire("pacing_exhausted", "login a", "budget spent")
        assert dagster.resolve("pacing_exhausted", "login a")
        assert not live.resolve("pacing_exhausted", "login a")
    assert len(receiver.wait_for(2)) == 2
    assert read_alerts(tmp_path)["source"].to_list() == ["live", "dagster"]


def test_shared_through_postgresql(tmp_path: Path, receiver, postgres_url, monkeypatch) -> None:
    monkeypatch.setenv("IBW_POSTGRES_URL", postgres_url)
    with Alerter(tmp_path / "a", [receiver.url]) as one, Alerter(tmp_path / "b", []) as two:
        assert one.fire("dagster_run_failed", "bars_job", "failed")
        assert not two.fire("dagster_run_failed", "bars_job", "failed")
        assert two.active() == {("dagster_run_failed", "bars_job"): "failed"}


def test_a_failing_channel_is_recorded_and_logged_without_its_url(
    tmp_path: Path, receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    secret = receiver.url + "?token-secret=1"
    with caplog.at_level(logging.INFO, "ibw.alerts"), Alerter(tmp_path, [secret]) as alerter:
        assert alerter.fire("stream_stale", "AAPL", "AAPL silent in session.")
    row = read_alerts(tmp_path).row(0, named=True)
    assert (row["delivered"], row["channels"]) == (False, 1)
    assert "not delivered" in caplog.text and "json://" in caplog.text
    assert "token-secret" not in caplog.text and "127.0.0.1" not in caplog.text


def test_without_channels_an_alert_is_recorded_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("IBW_ALERT_URLS", raising=False)
    with caplog.at_level(logging.WARNING, "ibw.alerts"), Alerter(tmp_path) as alerter:
        assert alerter.channels == 0
        assert alerter.fire("reconciliation_difference", "journal", "2 differences.")
    assert "2 differences" in caplog.text
    row = read_alerts(tmp_path).row(0, named=True)
    assert (row["delivered"], row["channels"]) == (False, 0)


def test_urls_split_on_spaces_and_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBW_ALERT_URLS", " json://a/ ,ntfy://topic  tgram://bot/chat,")
    assert alert_urls() == ["json://a/", "ntfy://topic", "tgram://bot/chat"]
    assert alert_urls("") == []
