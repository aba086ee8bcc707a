"""The IB logins the platform uses: the `gateways:` section of a configuration file, or one login
from IB_HOST / IB_PORT / IB_CLIENT_ID when there is none (the embedded gateway by default).

IB lets an account have several user names, and paces each login on its own (60 historical
requests per 10 minutes, its own market-data lines), so a second login doubles what a backfill
can ask for. Each login is its own pacing domain (its gateway's host and port name its log) and
serves data, trading or both. A contract's bar series go to one data login, chosen from the
login's `symbols:` when it lists the contract's symbol, else by rendezvous hashing of the
contract's key: stable across ticks and processes, and adding a login moves only the contracts
the new login wins.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ibfacts.resets import RESET_WINDOWS
from ibkr.connection import ConnectionSettings
from ibkr.restarts import NO_RESET

ROLES = ("data", "trading", "both")
DEFAULT_NAME = "default"
CLIENT_ID_BASE = 100  # the first id handed to runs (IB_CLIENT_ID), as before logins existed
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_KEYS = {"name", "host", "port", "client_id_base", "role", "accounts", "region", "symbols"}


class GatewaysError(ValueError):
    """A `gateways:` section that cannot be used; the message is one sentence with the fix."""

    @property
    def sentence(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Login:
    """One IB login: where its gateway listens and what it is used for."""

    name: str
    host: str = "127.0.0.1"
    port: int = 4002
    client_id_base: int = CLIENT_ID_BASE
    role: str = "both"
    accounts: tuple[str, ...] = ()  # empty: every account the login manages
    region: str = NO_RESET  # whose daily reset window this login's gateway sits out
    symbols: tuple[str, ...] = ()  # contracts pinned to this login for the backfill

    @property
    def serves_data(self) -> bool:
        return self.role in ("data", "both")

    @property
    def trades(self) -> bool:
        return self.role in ("trading", "both")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def settings(self, timeout: float = 10.0) -> ConnectionSettings:
        return ConnectionSettings(self.host, self.port, self.client_id_base, timeout)

    def in_reset(self, now: datetime) -> bool:
        """Whether `now` falls in the daily reset window of the login's region."""
        window = RESET_WINDOWS.get(self.region)
        return window is not None and window.contains(now)


def login_from_env() -> Login:
    """The one login of a platform without a `gateways:` section: IB_HOST, IB_PORT and
    IB_CLIENT_ID (default the embedded gateway on 127.0.0.1:4002)."""
    settings = ConnectionSettings.from_env()
    base = int(os.environ.get("IB_CLIENT_ID", CLIENT_ID_BASE))
    return Login(DEFAULT_NAME, settings.host, settings.port, base)


def parse_gateways(data: object, where: str) -> tuple[Login, ...]:
    """The logins of a configuration file's `gateways:` section, or GatewaysError."""
    if not isinstance(data, Mapping) or "gateways" not in data:
        raise GatewaysError(f"{where} has no `gateways:` section: add a list of IB logins to it.")
    items = data["gateways"]
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise GatewaysError(f"{where}: `gateways:` must be a list of at least one IB login.")
    logins = tuple(_login(item, f"{where}, gateways[{i}]") for i, item in enumerate(items))
    _check_unique(logins, where)
    if not any(login.serves_data for login in logins):
        raise GatewaysError(f"{where}: no login has role data or both; give one of them that role.")
    return logins


def _login(item: object, where: str) -> Login:
    if not isinstance(item, Mapping):
        raise GatewaysError(f"{where} must be a mapping with at least `name`, `host` and `port`.")
    unknown = set(item) - _KEYS
    if unknown:
        raise GatewaysError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {sorted(_KEYS)}."
        )
    missing = [key for key in ("name", "host", "port") if key not in item]
    if missing:
        raise GatewaysError(
            f"{where}: `{missing[0]}` is missing; every login needs name, host, port."
        )
    name = str(item["name"])
    if not _NAME.fullmatch(name):
        raise GatewaysError(
            f"{where}: name {name!r} must be lower-case letters, digits, '-' or '_' (up to 32), "
            "starting with a letter, as it names a Dagster tag and a pacing log."
        )
    port, base = item["port"], item.get("client_id_base", CLIENT_ID_BASE)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise GatewaysError(f"{where}: port {port!r} must be a TCP port number (1-65535).")
    if not isinstance(base, int) or isinstance(base, bool) or not 0 <= base < 2**31 - 1000:
        raise GatewaysError(f"{where}: client_id_base {base!r} must be a whole number from 0.")
    role = str(item.get("role", "both"))
    if role not in ROLES:
        raise GatewaysError(f"{where}: role {role!r} must be one of {', '.join(ROLES)}.")
    region = str(item.get("region", NO_RESET))
    if region != NO_RESET and region not in RESET_WINDOWS:
        regions = ", ".join([*RESET_WINDOWS, NO_RESET])
        raise GatewaysError(f"{where}: region {region!r} must be one of {regions}.")
    return Login(
        name=name,
        host=str(item["host"]),
        port=port,
        client_id_base=base,
        role=role,
        accounts=_strings(item, "accounts", where),
        region=region,
        symbols=tuple(s.upper() for s in _strings(item, "symbols", where)),
    )


def _strings(item: Mapping, key: str, where: str) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise GatewaysError(f"{where}: `{key}` must be a list, e.g. [{key[:-1].upper()}1].")
    return tuple(str(v) for v in value)


def _check_unique(logins: tuple[Login, ...], where: str) -> None:
    for kind in ("name", "address"):
        values = [getattr(login, kind) for login in logins]
        twice = next((v for v in values if values.count(v) > 1), None)
        if twice is not None:
            raise GatewaysError(
                f"{where}: two logins share the {kind} {twice}; each login needs its own."
            )
    trading = [login for login in logins if login.trades]
    if len(trading) > 1:
        owned: dict[str, str] = {}
        for login in trading:
            if not login.accounts:
                raise GatewaysError(
                    f"{where}: {len(trading)} logins trade, so each needs its `accounts` (the "
                    f"snapshot takes each account from its owner); list them for {login.name}, "
                    "or give a login that only fetches data role: data."
                )
            for account in login.accounts:
                if account in owned:
                    raise GatewaysError(
                        f"{where}: account {account} is listed for both {owned[account]} and "
                        f"{login.name}; each account has one owning login."
                    )
                owned[account] = login.name
    pinned: dict[str, str] = {}
    for login in logins:
        for symbol in login.symbols:
            if symbol in pinned:
                raise GatewaysError(
                    f"{where}: {symbol} is pinned to both {pinned[symbol]} and {login.name}; "
                    "pin it to one login."
                )
            pinned[symbol] = login.name


def data_login(logins: Sequence[Login], contract_key: str, symbol: str) -> Login:
    """The data login that backfills a contract: the one that pins its symbol, else the one
    with the highest hash of (login, contract) (rendezvous hashing)."""
    serving = [login for login in logins if login.serves_data]
    for login in serving:
        if symbol.upper() in login.symbols:
            return login
    return max(serving, key=lambda login: _weight(login.name, contract_key))


def _weight(login: str, key: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{login}\0{key}".encode()).digest()[:8], "big")


def live_logins(
    logins: Sequence[Login], trading: str | None = None, data: str | None = None
) -> tuple[Login, Login]:
    """The live service's trading login and the data login it streams on (often the same one):
    the named ones, else the one login that trades, and that login if it serves data, else the
    first data login. Raises GatewaysError with the fix."""
    trading_login = find_login(logins, trading) if trading else None
    if trading_login is None:
        traders = [login for login in logins if login.trades]
        if len(traders) != 1:
            names = ", ".join(login.name for login in traders)
            raise GatewaysError(
                f"{len(traders)} IB logins trade ({names}): name the live service's with "
                "--trading-login."
                if traders
                else "No IB login trades: give the live service's login role trading or both."
            )
        trading_login = traders[0]
    if not trading_login.trades:
        raise GatewaysError(
            f"IB login {trading_login.name} has role {trading_login.role}: give it role trading "
            "or both, or name another with --trading-login."
        )
    if data:
        data_login_ = find_login(logins, data)
        if not data_login_.serves_data:
            raise GatewaysError(
                f"IB login {data} has role trading: give it role data or both, or name another "
                "with --data-login."
            )
    elif trading_login.serves_data:
        data_login_ = trading_login
    else:
        data_login_ = next(login for login in logins if login.serves_data)
    return trading_login, data_login_


def find_login(logins: Sequence[Login], name: str) -> Login:
    """The login called `name`, or GatewaysError naming the ones there are."""
    for login in logins:
        if login.name == name:
            return login
    names = ", ".join(login.name for login in logins)
    raise GatewaysError(f"No IB login is called {name!r}: use one of {names}.")
