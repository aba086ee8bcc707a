"""The deployment files, checked without Docker or systemd running: deploy/compose.yaml against
the Compose Specification's schema and against .env.example, the IB login kept to the gateway,
the health checks' commands run here against stand-ins (a listening socket, a small web server,
a health file), every `ibw` command line run through the real CLI's --help, the Dockerfile on the
locked environment, the systemd units parsed (and verified by systemd-analyze where it exists),
the gateway's daily restart inside IB's reset window and clear of the platform's schedules."""

from __future__ import annotations

import configparser
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from datetime import date, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from assets.account.schedules import FILLS_AT
from ibfacts.resets import NEW_YORK, RESET_WINDOWS
from ibkr.gateways import parse_gateways
from ibkr.restarts import snapshot_time
from tests.kit.processes import IBW, ROOT, free_port

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
GATEWAYS_EXAMPLE = DEPLOY / "gateways.example.yml"
SYSTEMD = DEPLOY / "systemd"
SYSTEMD_ENV_EXAMPLE = SYSTEMD / "ibw.env.example"
SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"

GATEWAY = "ib-gateway"
IB_CREDENTIALS = ("TWS_USERID", "TWS_PASSWORD")
# the image's socat ports on the compose network, by TRADING_MODE (gnzsnz/ib-gateway-docker)
SOCAT_PORTS = {"paper": "4004", "live": "4003"}
ROLES = {"data", "trading", "both"}
# a gateways.yml entry's keys (docs/DEPLOY.md)
GATEWAY_KEYS = {"name", "host", "port", "client_id_base", "role"}
OPTIONAL_GATEWAY_KEYS = {"accounts", "region", "symbols"}
# How far the gateway's restart stays from a scheduled IB run: the run, its retries (5 x 60 s,
# assets/failures.py) and the gateway's own minute or two of restarting fit well inside.
CLEAR_OF_SCHEDULES = timedelta(minutes=30)

# Compose's interpolation: $$ (a literal $), ${VAR}, ${VAR:-default}, ${VAR-default},
# ${VAR:?error}, ${VAR?error} and $VAR.
_REFERENCE = re.compile(
    r"\$(?:(?P<escape>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}|(?P<bare>\w+))"
)


# ----------------------------------------------------------------------------- helpers
def references(text: str) -> list[tuple[str, str | None, str]]:
    """(variable, operator, word) of each interpolation in `text`, escapes left out."""
    found = []
    for match in _REFERENCE.finditer(text):
        if not match["escape"]:
            found.append((match["braced"] or match["bare"], match["op"], match["word"] or ""))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    """`text` as Compose reads it with `env` (a missing `:?`/`?` variable raises KeyError)."""

    def value(match: re.Match) -> str:
        if match["escape"]:
            return "$"
        name, op, word = match["braced"] or match["bare"], match["op"], match["word"] or ""
        given = env.get(name)
        if op == ":-":
            return given or word
        if op == "-":
            return word if given is None else given
        if (op == ":?" and not given) or (op == "?" and given is None):
            raise KeyError(f"{name}: {word}")
        return given or ""

    return _REFERENCE.sub(value, text)


def strings(node: object) -> list[str]:
    """Every string value in a parsed YAML document, however deep."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def resolved(node: object, env: dict[str, str]) -> object:
    """A parsed YAML document with every string interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolved(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item, env) for item in node]
    return node


def env_file(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (value, the comment line right above it, '' if none) of a KEY=value file."""
    entries: dict[str, tuple[str, str]] = {}
    above = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            above = line
            continue
        if "=" in line:
            name, _, value = line.partition("=")
            assert name not in entries, f"{path.name} sets {name} twice"
            entries[name] = (value, above)
        above = ""
    return entries


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@functools.cache
def example_env() -> dict[str, str]:
    return {name: value for name, (value, _) in env_file(ENV_EXAMPLE).items()}


def services() -> dict[str, dict]:
    return compose()["services"]


def ibw_services() -> dict[str, dict]:
    """The services that run the platform's own image."""
    return {name: service for name, service in services().items() if "build" in service}


@functools.cache
def help_text(subcommand: str) -> str:
    """`ibw SUBCOMMAND --help` from the real command line."""
    done = subprocess.run(
        [*IBW, subcommand, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def unit(path: Path) -> configparser.ConfigParser:
    """A systemd unit read as an ini file: keys keep their case, a line ending in a backslash
    continues on the next."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text(), source=path.name)
    return parser


def exec_start(parser: configparser.ConfigParser) -> list[str]:
    return shlex.split(parser["Service"]["ExecStart"].replace("\\\n", " "))


def unit_environment(parser: configparser.ConfigParser) -> dict[str, str]:
    """The variables an Environment= line sets."""
    pairs = shlex.split(parser["Service"].get("Environment", ""))
    return dict(pair.split("=", 1) for pair in pairs)


def units() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def ibw_units() -> list[Path]:
    return [path for path in units() if path.name.startswith("ibw-")]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def pinned(image: str) -> bool:
    """An image named by an exact release (major.minor at least), not a moving tag."""
    _, _, tag = image.rpartition(":")
    return re.match(r"\d+\.\d+", tag) is not None


def ibw_command_lines() -> list:
    """Every `ibw` command line the deployment runs, named by where it is written."""
    lines = [(f"compose {name}", service["command"]) for name, service in ibw_services().items()]
    cmd = [arguments for instruction, arguments in dockerfile() if instruction == "CMD"]
    lines += [("Dockerfile CMD", json.loads(arguments)) for arguments in cmd]
    systemd_env = {name: value for name, (value, _) in env_file(SYSTEMD_ENV_EXAMPLE).items()}
    for path in ibw_units():
        argv = [interpolate(arg, systemd_env) for arg in exec_start(unit(path))]
        lines.append((path.name, argv))
    return [pytest.param(where, argv, id=where) for where, argv in lines]


# ----------------------------------------------------------------------------- compose
def test_compose_file_is_valid_under_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator(schema).iter_errors(compose())]
    assert errors == []


def test_the_schema_refuses_a_misspelt_key_and_a_wrong_type() -> None:
    """What the check above relies on: the schema is strict, not an accept-anything."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose()))
    broken["services"]["ibw"]["helthcheck"] = broken["services"]["ibw"].pop("healthcheck")
    broken["services"]["postgres"]["restart"] = 5
    validator = jsonschema.validators.validator_for(schema)(schema)
    paths = sorted(error.json_path for error in validator.iter_errors(broken))
    assert paths == ["$.services.ibw", "$.services.postgres.restart"]


def test_every_service_has_an_image_a_restart_policy_and_a_health_check() -> None:
    assert set(services()) == {GATEWAY, "postgres", "ibw", "ibw-live"}
    for name, service in services().items():
        assert "image" in service or "build" in service, name
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name


def test_images_are_pinned_to_a_release() -> None:
    for name, service in services().items():
        if "build" not in service:
            assert pinned(service["image"]), f"{name}: {service['image']}"


def ignore_file(path: Path) -> set[str]:
    """The patterns of a .gitignore or .dockerignore, a folder's without its trailing slash."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line.rstrip("/") for line in lines if line and not line.startswith("#")}


def test_volumes_are_declared_and_the_deployment_s_own_folders_stay_out_of_git_and_images() -> None:
    declared = set(compose()["volumes"])
    ignored = ignore_file(DEPLOY / ".gitignore")  # made on the server, beside compose.yaml
    dockerignored = ignore_file(ROOT / ".dockerignore")
    used = set()
    for name, service in services().items():
        for mount in resolved(service.get("volumes", []), example_env()):
            source = mount.split(":")[0]
            if source.startswith(("./", "/")):
                relative = source.removeprefix("./")
                made_on_the_server = any(fnmatch(relative, p) for p in ignored)
                assert (DEPLOY / relative).exists() or made_on_the_server, f"{name}: {source}"
                if made_on_the_server:  # may hold a secret or the gateway's session
                    assert any(fnmatch(f"deploy/{relative}", p) for p in dockerignored), name
            else:
                used.add(source)
    assert used == declared


def test_published_ports_are_on_loopback_only() -> None:
    published = {
        name: resolved(service["ports"], example_env())
        for name, service in services().items()
        if "ports" in service
    }
    assert published == {"ibw": ["127.0.0.1:3000:3000"]}


def test_every_variable_the_compose_file_uses_is_in_env_example_with_a_comment() -> None:
    used = {name for text in strings(compose()) for name, _, _ in references(text)}
    documented = env_file(ENV_EXAMPLE)
    assert sorted(used - set(documented)) == [], "missing from .env.example"
    assert sorted(set(documented) - used) == [], "in .env.example but unused"
    uncommented = [name for name, (_, comment) in documented.items() if not comment]
    assert uncommented == []


def test_compose_defaults_are_the_values_of_env_example() -> None:
    """A default stated twice says the same thing twice."""
    for text in strings(compose()):
        for name, op, word in references(text):
            if op in (":-", "-"):
                assert word == example_env()[name], name


def test_the_compose_file_starts_with_env_example_filled_in() -> None:
    resolved(compose(), example_env())  # no required variable missing


def test_ib_credentials_reach_the_gateway_only() -> None:
    gateway_env = services()[GATEWAY]["environment"]
    for credential in IB_CREDENTIALS:
        assert references(gateway_env[credential])[0][0] == credential
    for name, service in services().items():
        assert "env_file" not in service, name  # .env passed whole would carry the login
        if name != GATEWAY:
            assert "TWS_" not in json.dumps(service), name


def test_ibw_services_reach_the_gateway_and_the_database_of_this_file() -> None:
    env = example_env()
    for name, service in ibw_services().items():
        settings = resolved(service["environment"], env)
        assert settings["IB_HOST"] in services(), name
        assert settings["IB_PORT"] == SOCAT_PORTS[env["TRADING_MODE"]], name
        url = urlsplit(settings["IBW_POSTGRES_URL"])
        assert url.hostname in services(), name
        assert (url.username, url.password, url.path) == (
            env["POSTGRES_USER"],
            env["POSTGRES_PASSWORD"],
            f"/{env['POSTGRES_DB']}",
        ), name
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            GATEWAY: {"condition": "service_healthy"},
        }, name
        command = service["command"]
        home = command[command.index("--home") + 1]
        targets = [mount.split(":")[1] for mount in resolved(service["volumes"], env)]
        assert settings["IBW_HOME"] == home and home in targets, name
        assert settings["IBW_LAKE"] in targets, name


def test_live_money_needs_the_opt_in_and_a_paper_default() -> None:
    live = resolved(services()["ibw-live"]["environment"], example_env())
    assert (live["IBW_TRADING_MODE"], live["IBW_LIVE_ACCOUNTS"]) == ("paper", "")
    assert "IBW_TRADING_MODE" not in services()["ibw"]["environment"]  # orders: `ibw live` only


# ----------------------------------------------------------------------------- health checks
def health_check(service: str, **replace: str) -> list[str]:
    """A service's health check as the container runs it ($$ unescaped), with `replace`'s
    texts swapped in so it can run here."""
    test = services()[service]["healthcheck"]["test"]
    assert test[0] == "CMD", service
    argv = [interpolate(arg, {}) for arg in test[1:]]
    for old, new in replace.items():
        argv = [arg.replace(old, new) for arg in argv]
    return argv


def passes(argv: list[str], **env: str) -> bool:
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, timeout=30)
    return done.returncode == 0


def in_this_python(argv: list[str]) -> list[str]:
    """A `python -c` check run by the tests' interpreter, the image's being absent here."""
    assert argv[:2] == ["python", "-c"]
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_the_gateway_is_healthy_once_its_own_api_port_answers(mode: str) -> None:
    ports = {"paper": str(free_port()), "live": str(free_port())}
    check = health_check(GATEWAY, **{"4002": ports["paper"], "4001": ports["live"]})
    assert check[0] == "bash"
    assert not passes(check, TRADING_MODE=mode)  # logging in: nothing listens yet
    with socket.create_server(("127.0.0.1", int(ports[mode]))):
        assert passes(check, TRADING_MODE=mode)
        other = "live" if mode == "paper" else "paper"
        assert not passes(check, TRADING_MODE=other)


def test_ibw_serve_is_healthy_while_the_webserver_answers_server_info() -> None:
    class Webserver(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/server_info" else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    check = in_this_python(health_check("ibw", **{"127.0.0.1:3000": f"127.0.0.1:{port}"}))
    assert not passes(check)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), Webserver) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert passes(check)
            assert not passes([arg.replace("/server_info", "/other") for arg in check])
        finally:
            server.shutdown()


def test_ibw_live_is_healthy_while_its_health_file_is_fresh(tmp_path: Path) -> None:
    health = tmp_path / "health.json"
    check = in_this_python(health_check("ibw-live", **{"/data/ibw/live/health.json": str(health)}))
    assert not passes(check)  # never connected yet
    health.write_text("{}")
    assert passes(check)
    stale = time.time() - 121  # the live_observer sensor's two minutes, and a second
    os.utime(health, (stale, stale))
    assert not passes(check)


# ----------------------------------------------------------------------------- commands
@pytest.mark.parametrize("where, argv", ibw_command_lines())
def test_ibw_command_lines_use_commands_and_flags_the_cli_has(where: str, argv: list[str]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert Path(argv[0]).name in scripts, where
    text = help_text(argv[1])
    assert text.startswith(f"usage: ibw {argv[1]} "), where
    for flag in (arg for arg in argv[2:] if arg.startswith("-")):
        assert re.search(rf"\s{re.escape(flag)}[\s,]", text), f"{where}: {flag}"


def test_a_flag_the_cli_lacks_is_noticed() -> None:
    assert not re.search(r"\s--bind[\s,]", help_text("serve"))


# ----------------------------------------------------------------------------- the restart
@pytest.mark.parametrize("day", [date(2026, 1, 14), date(2026, 7, 15)], ids=["winter", "summer"])
def test_the_gateway_restarts_inside_the_reset_window_clear_of_the_schedules(day: date) -> None:
    env = example_env()
    region = env["IBW_SNAPSHOT_REGION"]
    at = datetime.strptime(env["AUTO_RESTART_TIME"], "%I:%M %p").time()
    restart = datetime.combine(day, at, ZoneInfo(env["TIME_ZONE"]))
    assert RESET_WINDOWS[region].contains(restart)
    snapshot_at, zone = snapshot_time(region)
    for scheduled in (
        datetime.combine(day, snapshot_at, ZoneInfo(zone)),
        datetime.combine(day, FILLS_AT, NEW_YORK),
    ):
        gap = min(abs(restart - scheduled + timedelta(days=shift)) for shift in (-1, 0, 1))
        assert gap >= CLEAR_OF_SCHEDULES, scheduled


def test_the_gateway_settings_follow_ibc_s_rules() -> None:
    env = example_env()
    assert env["TRADING_MODE"] == "paper"  # paper first
    assert re.fullmatch(r"(0\d|1[0-2]):[0-5]\d (AM|PM)", env["AUTO_RESTART_TIME"])
    if env["TWOFA_TIMEOUT_ACTION"] == "restart":  # IBC: restart needs the relogin setting
        assert env["RELOGIN_AFTER_TWOFA_TIMEOUT"] == "yes"
    mounted = resolved(services()[GATEWAY]["volumes"], env)
    assert [mount.split(":")[1] for mount in mounted] == [env["TWS_SETTINGS_PATH"]]


def test_gateways_example_lists_logins_in_the_documented_form() -> None:
    gateways = yaml.safe_load(GATEWAYS_EXAMPLE.read_text())
    assert set(gateways) == {"gateways"}
    commented = re.findall(r"^ {2}# ([\w-]+):$", COMPOSE.read_text(), re.MULTILINE)
    names = []
    for gateway in gateways["gateways"]:
        assert GATEWAY_KEYS <= set(gateway) <= GATEWAY_KEYS | OPTIONAL_GATEWAY_KEYS
        assert gateway["host"] in {*services(), *commented}
        assert str(gateway["port"]) in SOCAT_PORTS.values()
        assert isinstance(gateway["client_id_base"], int) and gateway["client_id_base"] > 0
        assert gateway["role"] in ROLES
        assert all(isinstance(a, str) for a in gateway.get("accounts", []))
        assert gateway.get("region", "north_america") in RESET_WINDOWS
        names.append(gateway["name"])
    assert len(names) == len(set(names)) > 1
    logins = parse_gateways(gateways, GATEWAYS_EXAMPLE.name)  # as the platform reads it
    assert [login.name for login in logins] == names


# ----------------------------------------------------------------------------- Dockerfile
def test_the_image_is_built_from_the_lock_on_a_pinned_python_as_a_user_of_its_own() -> None:
    instructions = dockerfile()
    bases = [arguments for instruction, arguments in instructions if instruction == "FROM"]
    assert len(bases) == 1 and pinned(bases[0])
    version = re.match(r"python:(\d+\.\d+\.\d+)-", bases[0])
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version and version[1] in SpecifierSet(requires)
    copied_from = re.findall(r"--from=(\S+)", " ".join(a for i, a in instructions if i == "COPY"))
    assert copied_from and all(pinned(image) for image in copied_from)
    syncs = [arguments for instruction, arguments in instructions if "uv sync" in arguments]
    assert syncs
    for sync in syncs:
        assert re.search(r"--(locked|frozen)\b", sync) and "--no-dev" in sync, sync
    users = [arguments for instruction, arguments in instructions if instruction == "USER"]
    assert users and users[-1].partition(":")[0] not in ("root", "0")


def test_docs_name_the_pinned_images() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    images = [s["image"] for s in services().values() if "build" not in s]
    images += [a for i, a in dockerfile() if i == "FROM"]
    for image in images:
        assert image in text, image


# ----------------------------------------------------------------------------- systemd
def test_units_restart_stop_cleanly_and_run_as_their_own_users() -> None:
    assert {path.name for path in units()} >= {
        "ib-gateway.service",
        "ibw-serve.service",
        "ibw-live.service",
    }
    for path in units():
        service = unit(path)["Service"]
        assert service["Restart"] in ("on-failure", "always"), path.name
        assert service.get("User") not in (None, "root"), path.name
        assert Path(exec_start(unit(path))[0]).is_absolute(), path.name
    for name in ("ib-gateway.service", "ibw-serve.service", "ibw-live.service"):
        service = unit(SYSTEMD / name)["Service"]
        assert service["KillMode"] == "mixed" and int(service["TimeoutStopSec"]) > 0, name


def test_ibw_units_read_ibw_env_and_start_after_the_gateway() -> None:
    documented = env_file(SYSTEMD_ENV_EXAMPLE)
    for path in ibw_units():
        parsed = unit(path)
        assert parsed["Service"]["EnvironmentFile"] == "/etc/ibw/ibw.env", path.name
        assert "ib-gateway.service" in parsed["Unit"]["After"].split(), path.name
        for name, _, _ in references(" ".join(exec_start(parsed))):
            assert name in documented, f"{path.name}: {name}"
    assert [name for name, (_, comment) in documented.items() if not comment] == []
    assert not any(name.startswith("TWS_") for name in documented)


def test_the_gateway_unit_keeps_the_ib_login_to_itself() -> None:
    parsed = unit(SYSTEMD / "ib-gateway.service")
    assert "EnvironmentFile" not in parsed["Service"]  # ibw.env is the platform's
    argv = [interpolate(arg, unit_environment(parsed)) for arg in exec_start(parsed)]
    assert argv[1].isdigit()  # the gateway's version
    options = dict(arg.split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    assert options["--ibc-ini"].startswith("/etc/ibw/")
    assert options["--on2fatimeout"] == "exit"  # systemd restarts it, not IBC (IBC's notes)
    assert not any(arg.startswith(("--user", "--pw")) for arg in argv)  # never on a command line


def _verify(paths: list[Path], folder: Path) -> list[str]:
    """What `systemd-analyze verify` says about `paths`, each copied into `folder` with its
    programs replaced by stubs there (they are installed on the server, not here)."""
    stubs = folder / "bin"
    stubs.mkdir(exist_ok=True)
    copies = []
    for path in paths:
        text = path.read_text()
        program = exec_start(unit(path))[0]
        stub = stubs / Path(program).name
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
        copy = folder / path.name
        copy.write_text(text.replace(program, str(stub)))
        copies.append(copy)
    done = subprocess.run(
        ["systemd-analyze", "verify", *map(str, copies)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = (done.stdout + done.stderr).splitlines()
    return [line for line in said if any(copy.name in line for copy in copies)] + (
        [f"exit code {done.returncode}"] if done.returncode else []
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    assert _verify(units(), tmp_path) == []
    # and it does speak up here: a misspelt key in one copy is reported
    broken = tmp_path / "broken"
    broken.mkdir()
    source = broken / "ibw-live.service"
    source.write_text((SYSTEMD / "ibw-live.service").read_text().replace("KillMode=", "KilMode="))
    assert any("KilMode" in line for line in _verify([source], broken))


# ----------------------------------------------------------------------------- docs
def test_readme_links_the_deployment_guide() -> None:
    assert "(docs/DEPLOY.md)" in (ROOT / "README.md").read_text()
