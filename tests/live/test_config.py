"""The live config: strict YAML with one-sentence errors, and streams resolved from the security
master."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from live.config import (
    DEFAULT_CONFIG,
    LiveConfig,
    LiveConfigError,
    StreamSpec,
    resolve_streams,
)
from live.safety import OrderLimits


def parse(text: str) -> LiveConfig:
    return LiveConfig.parse(yaml.safe_load(text), "live.yml")


def test_the_default_file_loads() -> None:
    config = LiveConfig.load(DEFAULT_CONFIG)
    assert [s.symbol for s in config.streams] == ["AAPL", "SPY", "EUR.USD"]
    assert config.streams[2] == StreamSpec("EUR.USD", None, "CASH", True, True)
    assert (config.flush_every, config.stale_after, config.account) == (1.0, 30.0, "")
    assert config.limits == OrderLimits(10_000, 1_000_000)


def test_defaults_and_con_ids() -> None:
    config = parse("streams: [{con_id: 265598, bars: true}]")
    assert config.streams == (StreamSpec(None, 265598, None, False, True),)
    assert config.limits == OrderLimits()
    assert config.flush_every == 1.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("streams: [{symbol: AAPL, bars: true}]\nflsh_every: 1", ["'flsh_every'", "flush_every"]),
        ("streams: [{symbol: AAPL, bar: true}]", ["streams[0]", "unknown key 'bar'"]),
        ("streams: []", ["non-empty list"]),
        ("flush_every: 1", ["'streams'"]),
        ("streams: [{symbol: AAPL}]", ["neither ticks nor bars", "bars: true"]),
        ("streams: [{symbol: AAPL, ticks: yes please}]", ["ticks must be true or false"]),
        ("streams: [{symbol: AAPL, con_id: 1, bars: true}]", ["exactly one of symbol and con_id"]),
        ("streams: [{con_id: -4, bars: true}]", ["con_id must be a positive integer"]),
        ("streams: [{symbol: AAPL, sec_type: STOCK, bars: true}]", ["sec_type 'STOCK'", "STK"]),
        ("streams: [{symbol: AAPL, bars: true}, {symbol: aapl, bars: true}]", ["listed twice"]),
        (
            "streams: [{symbol: AAPL, bars: true}]\nflush_every: fast",
            ["flush_every must be a number"],
        ),
        ("streams: [{symbol: AAPL, bars: true}]\nflush_every: 0", ["flush_every must be positive"]),
        ("streams: [{symbol: AAPL, bars: true}]\nstale_after: 4", ["two 5-second bars", "10"]),
        ("streams: [{symbol: AAPL, bars: true}]\naccount: 123", ["account must be text"]),
        ("streams: [{symbol: AAPL, bars: true}]\nlimits: {max_qty: 5}", ["limits", "'max_qty'"]),
        ("streams: [{symbol: AAPL, bars: true}]\nlimits: {max_quantity: 0}", ["max_quantity"]),
        ("- AAPL", ["expected a mapping"]),
    ],
)
def test_a_bad_config_is_refused_in_one_sentence_naming_the_key(
    text: str, words: list[str]
) -> None:
    with pytest.raises(LiveConfigError) as caught:
        parse(text)
    sentence = str(caught.value)
    assert "\n" not in sentence and sentence.endswith(".")
    for word in words:
        assert word in sentence


def test_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(LiveConfigError, match="No live config at"):
        LiveConfig.load(tmp_path / "nope.yml")
    broken = tmp_path / "live.yml"
    broken.write_text("streams: [{symbol: AAPL\n")
    with pytest.raises(LiveConfigError, match="not valid YAML at line"):
        LiveConfig.load(broken)


def test_streams_resolve_from_the_security_master(seeded_home: Path) -> None:
    resolved = resolve_streams(seeded_home, LiveConfig.load(DEFAULT_CONFIG))
    aapl, spy, eur = resolved
    assert (aapl.con_id, aapl.sec_type, aapl.what_to_show) == (265598, "STK", "TRADES")
    assert spy.con_id == 756733 and spy.ticks and spy.bars
    assert (eur.con_id, eur.symbol, eur.what_to_show) == (12087792, "EUR.USD", "MIDPOINT")
    assert eur.time_zone_id and eur.trading_hours
    assert eur.hours.calendar is None  # IB's own FX week
    assert aapl.contract().conId == 265598


def test_unknown_and_ambiguous_symbols_say_what_to_do(seeded_home: Path, tmp_path: Path) -> None:
    with pytest.raises(LiveConfigError, match=r"ZZZZ is not in the security master.*contracts"):
        resolve_streams(seeded_home, parse("streams: [{symbol: ZZZZ, bars: true}]"))
    with pytest.raises(LiveConfigError, match=r"ES matches .* contracts.*con_id"):
        resolve_streams(seeded_home, parse("streams: [{symbol: ES, bars: true}]"))
    with pytest.raises(LiveConfigError, match=r"no security master yet.*ibw universe"):
        resolve_streams(tmp_path, parse("streams: [{symbol: AAPL, bars: true}]"))
