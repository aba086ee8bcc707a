"""`ibw universe` (issue 14): the security master built from the command line, no Dagster, with
a line per entry, a summary, and a non-zero exit when an entry did not resolve."""

from __future__ import annotations

import re
import subprocess

import pytest

from cli.main import main
from tests.kit.processes import IBW, ROOT, environment
from tests.kit.universe import write_universe
from warehouse.parquet import read_dataset


def test_a_fresh_warehouse_gets_its_security_master_and_the_backfill_can_start(
    gateway, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("IB_PORT", str(gateway.port))
    monkeypatch.setenv("COLUMNS", "200")
    home = tmp_path / "ibw"
    universe = write_universe(tmp_path, entries=[{"symbol": "AAPL"}, {"fx": "EUR.USD"}])
    assert main(["plan", "--home", str(home), "--bar-size", "1 day"]) == 1
    assert "run `ibw universe` first" in capsys.readouterr().out  # not "start Dagster"

    assert main(["universe", "--home", str(home), "--universe", str(universe)]) == 0
    out = capsys.readouterr().out
    assert "[1/2] symbol AAPL (STK SMART): 1 contract" in out
    assert "[2/2] fx EUR.USD (CASH IDEALPRO): 1 contract" in out
    assert "2 entries, 0 failed: 2 contracts (2 new, 0 changed, 0 unchanged)" in out
    assert sorted(read_dataset(home, "security_master")["con_id"]) == [265598, 12087792]

    assert main(["universe", "--home", str(home), "--universe", str(universe)]) == 0
    assert "(0 new, 0 changed, 2 unchanged)" in capsys.readouterr().out
    assert main(["plan", "--home", str(home), "--bar-size", "1 day", "AAPL"]) == 0


@pytest.mark.slow  # a real `ibw` process
def test_an_entry_that_fails_is_one_sentence_in_the_summary_and_the_exit_code(gateway, tmp_path):
    universe = write_universe(tmp_path, entries=[{"symbol": "AAPL"}, {"symbol": "NOPE"}])
    result = subprocess.run(
        [*IBW, "universe", "--home", str(tmp_path / "ibw"), "--universe", str(universe)],
        cwd=ROOT, env=environment(gateway.port), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Traceback" not in out + result.stderr
    lines = out.splitlines()
    assert lines[0] == "[1/2] symbol AAPL (STK SMART): 1 contract"  # plain lines in a pipe
    failed = r"\[2/2\] failed: symbol NOPE \(STK SMART\): no security definition"
    assert re.match(failed, lines[1])
    assert any(re.match(r"│ STK +│ +1 │", line) for line in lines), out
    assert "2 entries, 1 failed: 1 contracts (1 new, 0 changed, 0 unchanged)" in out
    assert lines[-1].startswith("symbol NOPE (STK SMART): no security definition")
