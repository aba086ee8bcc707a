"""`ibw plan` and `ibw backfill`: the backfill from the command line, with its cost up front.

Both read the bar series from the universe file's `bars:` section (or one ad-hoc series from
`--bar-size` and `--history`) and the contracts from the warehouse's security master, connect to
the gateway (IB_HOST / IB_PORT, default the embedded one on 127.0.0.1:4002), and pace every
request through the login's shared pacer, so they can run beside Dagster and each other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.interrupts import Interrupted, Stop, interruptible
from cli.progress import PlainProgress
from engines.backfill import Backfill, SeriesReport, connected
from engines.bar_series import Span, Target, known_head, plan_series, targets
from engines.gateways_file import load_logins
from engines.universe_file import load_universe, universe_path
from ibkr.durations import SMALL_BAR_MAX_AGE, is_small_bar
from ibkr.errors import one_sentence
from ibkr.gateways import GatewaysError, Login, data_login, find_login
from ibkr.planner import PlannedRequest, describe_cost
from ibkr.universe import BarSpec, UniverseError, check_what_to_show, parse_bar_spec
from warehouse import ledger
from warehouse.catalog import refresh_catalog
from warehouse.layout import home as default_home

UTC_ZONE = ZoneInfo("UTC")


def add_backfill_commands(commands: argparse._SubParsersAction) -> None:
    """Register `plan` and `backfill` on the `ibw` subcommands."""
    for name, run, text in (
        ("plan", run_plan, "show the requests a backfill would send, and their cost"),
        ("backfill", run_backfill, "fetch the missing bars, paced, with progress"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("symbols", nargs="*", help="only these contracts (default: all)")
        command.add_argument("--home", default=str(default_home()), help="warehouse ($IBW_HOME)")
        command.add_argument("--universe", help="universe file (default: $IBW_UNIVERSE)")
        command.add_argument("--bar-size", help='one series instead of the file\'s, e.g. "1 min"')
        command.add_argument(
            "--history",
            default="30d",
            help="with --bar-size: e.g. 5d (the last five sessions), 6m, 20y (calendar months, "
            "years)",
        )
        command.add_argument(
            "--start",
            type=_moment,
            help="from this date or time (YYYY-MM-DD [HH:MM]) in each contract's exchange zone; "
            "instead of --history",
        )
        command.add_argument(
            "--end", type=_moment, help="up to this date or time (default: now); same form"
        )
        command.add_argument("--what-to-show", default="", help="with --bar-size: e.g. MIDPOINT")
        command.add_argument("--all-hours", action="store_true", help="with --bar-size: useRTH=0")
        command.add_argument(
            "--login",
            help="only the series assigned to this IB login of $IBW_GATEWAYS (default: every "
            "data login, in parallel)",
        )
        command.set_defaults(run=run)


_FLAGS = {"bar_size": "--bar-size", "history": "--history", "what_to_show": "--what-to-show"}
_MOMENT_FORMS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _moment(text: str) -> date | datetime:
    """An argparse type: a date, or a date and time, as the exchange's clock reads them."""
    for form in _MOMENT_FORMS:
        try:
            moment = datetime.strptime(text.strip(), form)
        except ValueError:
            continue
        return moment.date() if form == "%Y-%m-%d" else moment
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a date nor a time; write YYYY-MM-DD or 'YYYY-MM-DD HH:MM' "
        "(the exchange's local time)"
    )


@dataclass(frozen=True)
class _Planned:
    target: Target
    expected: int
    held: int
    requests: tuple[PlannedRequest, ...]
    unavailable: int
    head_unknown: bool  # the backfill will ask IB for the head timestamp first


def _specs(args: argparse.Namespace) -> tuple[BarSpec, ...]:
    if args.bar_size:
        item = {"bar_size": args.bar_size, "history": args.history, "use_rth": not args.all_hours}
        if args.what_to_show:
            item["what_to_show"] = args.what_to_show
        return (parse_bar_spec(item, "--bar-size", _FLAGS),)
    path = args.universe or universe_path()
    specs = load_universe(path).bars
    if not specs:
        raise UniverseError(f"{path} has no 'bars' section; add one or pass --bar-size.")
    return specs


def _setup(args: argparse.Namespace) -> tuple[Path, list[Target]]:
    home = Path(args.home).resolve()
    specs = _specs(args)
    if args.bar_size and args.what_to_show:
        _check_named(home, specs[0], args.symbols)
    found = targets(home, specs, args.symbols, _span(args))
    if not found:
        raise UniverseError("no contract in the security master matches; check the symbols.")
    return home, found


def _by_login(args: argparse.Namespace, found: list[Target]) -> dict[Login, list[Target]]:
    """The series grouped by the data login each is assigned to (`--login`: that one only)."""
    logins = load_logins()
    groups: dict[Login, list[Target]] = {}
    for target in found:
        groups.setdefault(data_login(logins, str(target.con_id), target.symbol), []).append(target)
    if not args.login:
        return groups
    login = find_login(logins, args.login)
    if not login.serves_data:
        raise GatewaysError(
            f"IB login {login.name} has role trading only; backfill on a login with role data "
            "or both."
        )
    if login not in groups:
        raise GatewaysError(f"No series of these contracts is assigned to IB login {login.name}.")
    return {login: groups[login]}


def _span(args: argparse.Namespace) -> Span:
    span = Span(args.start, args.end)
    start, end = span.start_at(UTC_ZONE), span.end_at(UTC_ZONE)  # one zone: only the order counts
    if start is not None and end is not None and end <= start:
        raise UniverseError(
            f"--end {args.end} is not after --start {args.start}; give an end later than the start."
        )
    return span


def _check_started(found: list[Target], now: datetime) -> None:
    """A --start after the gateway's now: nothing could be fetched, so say so instead."""
    for target in found:
        start = target.span.start_at(ZoneInfo(target.hours.tz))
        if start is not None and start > now:
            raise UniverseError(
                f"--start {target.span.start} is in the future for {target.symbol} (the "
                f"gateway's time is {now:%Y-%m-%d %H:%M} UTC); give a start in the past."
            )


def _check_named(home: Path, spec: BarSpec, symbols: list[str]) -> None:
    """`--what-to-show` for a contract named on the command line whose security type IB serves
    no such history for: IB's 321 said up front, not the contract silently left out."""
    if symbols:
        for target in targets(home, [replace(spec, what_to_show="")], symbols):
            check_what_to_show(target.sec_type, spec.what_to_show, target.symbol)


def _availability_notes(specs: list[BarSpec]) -> list[str]:
    """What the plan leaves out because IB keeps no such history, e.g. a year of 1-s bars."""
    months = SMALL_BAR_MAX_AGE.days // 30
    return [
        f"IB keeps {months} months of bars of 30 seconds and smaller, so {spec.key} is planned "
        f"for the last {SMALL_BAR_MAX_AGE.days} days, not the {spec.history_days} asked for."
        for spec in dict.fromkeys(specs)
        if is_small_bar(spec.bar_size) and spec.history_days > SMALL_BAR_MAX_AGE.days
    ]


def _head_key(target: Target) -> tuple[int, str, bool]:
    """What a head timestamp is asked for: one per contract, whatToShow and hours."""
    return target.con_id, target.what_to_show, target.spec.use_rth


def _plan_all(backfill: Backfill, found: list[Target], *, ask_heads: bool) -> list[_Planned]:
    """Every series' plan. Without `ask_heads` nothing is sent to IB (a head timestamp counts
    against the small-bar budget): a series whose head is not known yet is planned over the
    whole window asked for, and flagged, so the plan can say what the backfill will ask first."""
    now = backfill.now()
    _check_started(found, now)
    rows = []
    for target in found:
        head = backfill.head(target, now) if ask_heads else known_head(backfill.home, target)
        planned, sessions = plan_series(target, backfill.home, now, backfill.table, head)
        held = ledger.read_series(backfill.home, target.key)
        done = held.filter(held["status"].is_in(["complete", "empty"])).height
        unknown = head is None and not ask_heads and bool(planned.requests)
        rows.append(
            _Planned(
                target, len(sessions), done, planned.requests, len(planned.unavailable), unknown
            )
        )
    return rows


def run_plan(args: argparse.Namespace) -> int:
    console = Console()
    try:
        with interruptible() as stop:
            home, found = _setup(args)
            key = f"plan-{os.getpid()}"
            planned: dict[Login, tuple[list[_Planned], Backfill]] = {}
            for login, assigned in _by_login(args, found).items():
                with connected(login.settings(), home, key) as backfill:
                    backfill.pacer.sleep = stop.sleep
                    planned[login] = _plan_all(backfill, assigned, ask_heads=False), backfill
    except Interrupted as interrupted:
        console.print("[red]ibw plan:[/red] interrupted; nothing was planned.", soft_wrap=True)
        return interrupted.exit_code
    except Exception as exc:  # one sentence, whatever failed
        console.print(f"[red]ibw plan:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    several = len(planned) > 1
    table = Table(title="Backfill plan")
    columns = ["series", "expected sessions", "held", "requests", "not available"]
    for column in ["login", *columns] if several else columns:
        table.add_column(column, justify="right" if column in columns[1:] else "left")
    for login, (rows, _) in planned.items():
        for row in rows:
            cells = [row.target.name, str(row.expected), str(row.held), str(len(row.requests)),
                     str(row.unavailable)]  # fmt: skip
            table.add_row(*([login.name, *cells] if several else cells))
    console.print(table)
    rows = [row for rows, _ in planned.values() for row in rows]
    for note in _availability_notes([row.target.spec for row in rows]):
        console.print(note, soft_wrap=True)
    if not any(row.requests for row in rows):
        console.print(f"{len(rows)} series: nothing to fetch, every expected session is held.")
        return 0
    for login, (login_rows, backfill) in planned.items():  # each login has its own budget
        budget = backfill.pacer.budget
        requests = [r for row in login_rows for r in row.requests]
        cost = describe_cost(requests, budget=budget.backfill_limit, window_s=budget.window)
        on = f" on IB login {login.name} ({login.address})" if several else ""
        console.print(f"{len(login_rows)} series{on}: {cost}.", soft_wrap=True)
    heads = sum(row.head_unknown for row in rows)
    if heads:
        console.print(
            f"The backfill will first ask IB for {heads} head timestamp{'s' * (heads != 1)} "
            f"({heads} small-bar request{'s' * (heads != 1)}), then may plan fewer requests "
            "where a contract's data starts later; this plan sent none.",
            soft_wrap=True,
        )
    return 0


def run_backfill(args: argparse.Namespace) -> int:
    console = Console()
    reports: list[SeriesReport] = []
    rows: list[_Planned] = []
    finished = 0
    try:
        with interruptible() as stop:
            home, found = _setup(args)
            groups = _by_login(args, found)
            if len(groups) > 1:
                return _fan_out(console, args, list(groups), stop)
            [(login, found)] = groups.items()
            key = f"backfill-{os.getpid()}"
            with connected(login.settings(), home, key) as backfill:
                backfill.pacer.sleep = stop.sleep  # a pacing wait ends at Ctrl-C
                unknown = len({_head_key(t) for t in found if known_head(home, t) is None})
                asking = nullcontext()
                if unknown:  # paced like small bars: a large universe waits on IB's window
                    console.print(
                        f"Asking IB where the data of {unknown} contract series starts (head "
                        "timestamps, paced like small-bar requests).", soft_wrap=True,
                    )  # fmt: skip
                    asking = _progress(console, unknown, backfill, stop, heads=True)
                with asking:
                    rows = _plan_all(backfill, found, ask_heads=True)
                total = sum(len(r.requests) for r in rows)
                with _progress(console, total, backfill, stop):
                    for row in rows:
                        reports.append(SeriesReport(row.target))
                        backfill.run(row.target, report=reports[-1])
                        finished += 1
                used = backfill.pacer.used()
                budget = backfill.pacer.budget.backfill_limit
            refresh_catalog(home)
    except Interrupted as interrupted:
        said = _kept(interrupted, reports, finished, len(rows))
        console.print(f"[red]ibw backfill:[/red] {said}", soft_wrap=True)
        return interrupted.exit_code
    except Exception as exc:
        console.print(f"[red]ibw backfill:[/red] {one_sentence(exc)}", soft_wrap=True)
        return 1
    console.print(_summary(reports, used, budget), soft_wrap=True)
    for report in reports:
        for error in report.errors:
            console.print(f"[yellow]{report.target.name}:[/yellow] {error}", soft_wrap=True)
    return 1 if any(r.errors for r in reports) else 0  # scripts see that something failed


STOP_CHILDREN = 60.0  # seconds a login's process may take to keep what it has and exit


def _fan_out(console: Console, args: argparse.Namespace, logins: list[Login], stop: Stop) -> int:
    """One `ibw backfill --login NAME` process per data login, at once (each login has its own
    pacing budget), their lines prefixed with the login's name; a stop signal goes to each."""
    names = ", ".join(login.name for login in logins)
    console.print(f"Backfilling on {len(logins)} IB logins at once: {names}.", soft_wrap=True)
    children = {
        login.name: subprocess.Popen(
            [sys.executable, "-m", "cli", *args.argv, "--login", login.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for login in logins
    }
    readers = [
        threading.Thread(target=_relay, args=(name, child.stdout), daemon=True)
        for name, child in children.items()
    ]
    for reader in readers:
        reader.start()
    try:
        while any(child.poll() is None for child in children.values()):
            stop.sleep(0.2)
    except Interrupted as interrupted:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(interrupted.signum)  # by its pid: it keeps what it has
        for child in children.values():
            try:
                child.wait(timeout=STOP_CHILDREN)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=STOP_CHILDREN)
        console.print(
            f"[red]ibw backfill:[/red] stopped by {interrupted.signame}; each login's process "
            "kept what IB had answered (its lines above).", soft_wrap=True,
        )  # fmt: skip
        return interrupted.exit_code
    finally:
        for reader in readers:
            reader.join(timeout=STOP_CHILDREN)
    codes = {name: child.returncode for name, child in children.items()}
    failed = [name for name, code in codes.items() if code]
    console.print(
        f"{len(logins)} IB logins done"
        + (f"; {', '.join(failed)} ended with an error (see its lines)." if failed else "."),
        soft_wrap=True,
    )
    return max(codes.values())


def _relay(name: str, stream) -> None:
    """A child's lines, each prefixed with its login's name."""
    for line in stream:
        print(f"[{name}] {line}", end="", flush=True)


@contextmanager
def _progress(
    console: Console, total: int, backfill: Backfill, stop: Stop, heads: bool = False
) -> Iterator[None]:
    """A live bar on a terminal; elsewhere a plain line per request and per pacing wait. With
    `heads`, the requests are the head timestamps planning asks for."""
    if not console.is_terminal:
        plain = PlainProgress(console, total)

        def sleep(seconds: float) -> None:
            plain.waiting(seconds)
            stop.sleep(seconds)

        def sent(target: Target, request: PlannedRequest) -> None:
            stop.check()  # between requests: what is answered is written
            end = request.end_date_time or "now"
            plain.request(target.name, f"{request.duration} of {request.bar_size} ending {end}")

        def head(target: Target) -> None:
            plain.request(target.name, "head timestamp")

        backfill.pacer.sleep = sleep
        if heads:
            backfill.on_head = head
        else:
            backfill.on_request = sent
        yield
        return
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("requests", total=total or None)

        def advance(target: Target, request: PlannedRequest | None = None) -> None:
            stop.check()  # between requests: what is answered is written
            progress.update(task, advance=1, description=target.name)

        if heads:
            progress.update(task, description="head timestamps")
            backfill.on_head = advance
        else:
            backfill.on_request = advance
        yield


def _kept(interrupted: Interrupted, reports: list[SeriesReport], finished: int, series: int) -> str:
    """What a stopped backfill kept: every session whose requests all answered is written and
    in the ledger; one only partly answered is not (it is fetched again next time)."""
    stopped = f"stopped by {interrupted.signame}"
    if not series:
        return f"{stopped} while planning; no bars were fetched."
    answered = sum(r.requests for r in reports)
    kept = sum(r.complete + r.empty for r in reports)
    partial = sum(r.partial for r in reports)
    return (
        f"{stopped}: kept {answered} answered request{'s' * (answered != 1)}: {kept} "
        f"session{'s' * (kept != 1)}; {partial} partial (not recorded); "
        f"{series - finished} of {series} series unfinished; run it again to continue."
    )


def _summary(reports: list[SeriesReport], used: int, budget: int) -> str:
    requests = sum(r.requests for r in reports)
    if requests == 0 and not any(r.failed for r in reports):
        gaps = sum(r.gaps_left for r in reports)
        held = "every expected session is held" if not gaps else f"{gaps} sessions still missing"
        return f"Nothing to fetch for {len(reports)} series: {held}."
    skipped = sum(bool(r.skipped) for r in reports)
    return (
        f"Backfilled {len(reports)} series with {requests} requests: "
        f"{sum(r.bars for r in reports):,} bars, {sum(r.complete for r in reports)} sessions "
        f"complete, {sum(r.empty for r in reports)} confirmed empty, "
        f"{sum(r.failed for r in reports)} failed, {sum(r.quarantined for r in reports)} bars "
        f"quarantined; {sum(r.gaps_left for r in reports)} sessions still missing"
        + (f", {skipped} series left to another process" if skipped else "")
        + f". Small-bar pacing budget in use: {used} of {budget} per window."
    )
