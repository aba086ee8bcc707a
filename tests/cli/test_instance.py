"""The Dagster instance yaml of a warehouse home: SQLite under the home by default, PostgreSQL
through psycopg2 with IBW_POSTGRES_URL, loaded as a real DagsterInstance that stores a real run;
the URL's password never in the file."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from cli.instance import (
    INSTANCE_SETTINGS,
    POSTGRES_PASSWORD,
    InstanceSettingsError,
    postgres_db,
    write_instance,
)
from shared_state.settings import POSTGRES_URL

SECRET = "s3cr@t/pw"  # trust authentication ignores it; the file must never hold it
QUOTED_SECRET = "s3cr%40t%2Fpw"


@dg.asset
def answer() -> int:
    return 42


def _store_a_run(dagster_home) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert dg.materialize([answer], instance=instance).success
        return instance.get_runs()


def test_without_the_setting_the_instance_is_sqlite_under_the_home(tmp_path):
    instance = write_instance(tmp_path / "ibw", {})
    written = (instance.dagster_home / "dagster.yaml").read_text()
    assert written == INSTANCE_SETTINGS.read_text()  # the project's settings, unchanged
    assert instance.env == {"DAGSTER_HOME": str(tmp_path / "ibw" / "dagster")}
    assert instance.storage == f"SQLite under {instance.dagster_home}"
    (run,) = _store_a_run(instance.dagster_home)
    assert run.is_success
    assert (instance.dagster_home / "history" / "runs.db").exists()


def test_with_the_setting_runs_are_stored_in_postgres_through_psycopg2(
    tmp_path, monkeypatch, postgres_url
):
    url = postgres_url.replace("postgres@", f"postgres:{QUOTED_SECRET}@")
    instance = write_instance(tmp_path / "ibw", {POSTGRES_URL: url})
    written = (instance.dagster_home / "dagster.yaml").read_text()
    for secret in (url, SECRET, QUOTED_SECRET):
        assert secret not in written
    assert written.startswith(INSTANCE_SETTINGS.read_text())  # one source of the settings
    database = yaml.safe_load(written)["storage"]["postgres"]["postgres_db"]
    assert database["password"] == {"env": POSTGRES_PASSWORD}
    assert database["scheme"] == "postgresql+psycopg2"
    assert instance.env[POSTGRES_PASSWORD] == SECRET
    assert SECRET not in instance.storage and "postgres@" not in instance.storage
    monkeypatch.setenv(POSTGRES_PASSWORD, SECRET)

    (run,) = _store_a_run(instance.dagster_home)
    assert run.is_success
    with dg.DagsterInstance.from_config(str(instance.dagster_home)) as reread:
        assert type(reread.run_storage).__name__ == "PostgresRunStorage"
        assert [r.run_id for r in reread.get_runs()] == [run.run_id]
        assert reread.get_latest_materialization_event(answer.key) is not None
    assert not (instance.dagster_home / "history").exists()  # nothing went to SQLite


def test_a_url_without_password_or_host_names_a_unix_socket_and_no_env():
    database, password = postgres_db("postgresql://ibw@/dagster?host=/run/postgresql")
    assert password == "" and "password" not in database
    assert database == {
        "username": "ibw",
        "hostname": "",
        "port": 5432,
        "db_name": "dagster",
        "scheme": "postgresql+psycopg2",
        "params": {"host": "/run/postgresql"},
    }


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://root:{SECRET}@db:3306/dagster",
        f"postgresql+psycopg://root:{QUOTED_SECRET}@db/dagster",
        f"postgresql://root:{QUOTED_SECRET}@db:port/dagster",
        f"postgresql://root:{QUOTED_SECRET}@db:5432",
    ],
)
def test_a_bad_url_is_one_sentence_without_the_secret(url, tmp_path):
    with pytest.raises(InstanceSettingsError) as raised:
        write_instance(tmp_path / "ibw", {POSTGRES_URL: url})
    said = str(raised.value)
    assert POSTGRES_URL in said and said.endswith(".") and said.count(". ") == 0
    assert SECRET not in said and QUOTED_SECRET not in said and "root" not in said
    assert not (tmp_path / "ibw").exists()  # nothing written
