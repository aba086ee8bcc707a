"""Bars received for a series, held per session until every request covering it has answered.

Answers are kept as IB sent them and placed in their sessions once per flush, with one as-of
join on epoch seconds (a bar belongs to the session whose hours hold its start; a daily bar to
the session it is dated by). A session is handed out only when finished, so the ledger never
records half a session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

import polars as pl
from ib_async import BarData

from engines.bar_series import Target
from ibkr.planner import PlannedRequest, Session
from warehouse import bars as bar_store
from warehouse.columns import LINEAGE
from warehouse.schemas import polars_schema

_UTC = pl.Datetime("us", "UTC")
BAR_COLUMNS = [c for c in polars_schema(bar_store.DATASET) if c not in LINEAGE]


class SessionBatch:
    """Bars received, per session, until every request covering the session has answered.

    Answers are kept as they came and placed in their sessions once per flush (one as-of join
    over all of them, not one per answer)."""

    def __init__(
        self, target: Target, sessions: Sequence[Session], requests: Sequence[PlannedRequest]
    ) -> None:
        self.target = target
        self.sessions = pl.DataFrame(
            {
                "day": [s.day for s in sessions],
                "session_open": [s.open for s in sessions],
                "session_close": [s.close for s in sessions],
            },
            schema={"day": pl.Date, "session_open": _UTC, "session_close": _UTC},
        )
        self.waiting: dict[date, int] = defaultdict(int)
        for request in requests:
            for day in request.covers:
                self.waiting[day] += 1
        self.received: list[pl.DataFrame] = []  # answers not yet placed in their sessions
        self.placed = self.locate([])  # bars of sessions still waiting for a request
        self.finished: list[date] = []
        self.touched: set[date] = set()  # sessions some answered request covers
        self.rows = 0
        self.answered = 0

    def add(self, request: PlannedRequest, received: Sequence[BarData]) -> None:
        frame = bars_frame(received, self.target)
        self.received.append(frame)
        self.rows += frame.height
        self.answered += 1
        self.touched.update(request.covers)
        for day in request.covers:
            if self.waiting.get(day, 0) > 0:
                self.waiting[day] -= 1
                if self.waiting[day] == 0:
                    self.finished.append(day)

    @property
    def partial(self) -> list[date]:
        """Sessions some requests answered while others are still due: a run cut short here
        records none of them (the ledger never claims half a session)."""
        return sorted(d for d in self.touched if self.waiting.get(d, 0) > 0)

    def fail(self, request: PlannedRequest | None) -> list[date]:
        """A request failed (None: the whole series did): the sessions it leaves unfinished
        never finish in this run, and their bars received so far are dropped."""
        covers = request.covers if request else list(self.waiting)
        days = sorted(d for d in covers if self.waiting.get(d, 0) > 0)
        for day in days:
            del self.waiting[day]
        return days

    def take_finished(self) -> tuple[list[date], pl.DataFrame]:
        """The finished sessions and their bars; they leave the batch. Bars of sessions that
        are not waiting (held ones a request passed over, failed ones) are dropped; bars in no
        session at all go along, so validation quarantines them."""
        days = sorted(set(self.finished))
        everything = pl.concat([self.placed, self.locate(self.received)])
        session = pl.col("session_date")
        done = everything.filter(session.is_in(days) | session.is_null())
        still = [d for d, n in self.waiting.items() if n > 0]
        self.placed = everything.filter(session.is_in(still))
        self.received, self.finished, self.answered = [], [], 0
        self.rows = self.placed.height
        for day in days:
            self.waiting.pop(day, None)
        return days, done

    def locate(self, frames: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """Bars with `ts` (their start; a daily bar starts at its session's open) and the
        `session_date` they belong to, null when they are in no expected session. Bars before
        the first session or after the last are not wanted: a `N Y` span or a lone sliver can
        reach past the series' range."""
        frame = pl.concat(frames) if frames else bars_frame([], self.target)
        if frame.is_empty() or self.sessions.is_empty():
            nowhere = {"session_date": pl.lit(None, pl.Date), "ts": pl.lit(None, _UTC)}
            return frame.with_columns(**nowhere).select(BAR_COLUMNS)
        first, last = self.sessions.row(0, named=True), self.sessions.row(-1, named=True)
        sessions = self.sessions.lazy()
        intraday = frame.get_column("epoch").null_count() == 0
        if intraday:  # the session whose hours contain the bar's start
            located = (
                frame.lazy()
                .drop("day")
                .with_columns(ts=pl.from_epoch("epoch", "s").dt.replace_time_zone("UTC"))
                .sort("ts")
                .join_asof(sessions, left_on="ts", right_on="session_open", strategy="backward")
            )
            inside = pl.col("ts") < pl.col("session_close")
            wanted = pl.col("ts").is_between(
                first["session_open"], last["session_close"], closed="left"
            )
        else:  # a daily bar is dated by its session
            located = (
                frame.lazy()
                .join(sessions, on="day", how="left", maintain_order="left")
                .with_columns(ts=pl.col("session_open"))
            )
            inside = pl.col("session_open").is_not_null()
            wanted = pl.col("day").is_between(first["day"], last["day"])
        return (
            located.filter(wanted)
            .with_columns(session_date=pl.when(inside).then(pl.col("day")))
            .select(BAR_COLUMNS)
            .collect()
        )


def bars_frame(received: Sequence[BarData], target: Target) -> pl.DataFrame:
    """Bars as IB sent them, dated by `epoch` (intraday) or `day` (daily bars), with the
    dataset's columns otherwise (IB's -1 for 'no volume' becomes null)."""
    intraday = bool(received) and isinstance(received[0].date, datetime)
    n = len(received)

    def column(values: list, dtype: pl.DataType) -> pl.Series:
        return pl.Series(values, dtype=dtype)

    return pl.DataFrame(
        {
            "epoch": column([int(b.date.timestamp()) for b in received] if intraday else [None] * n,
                            pl.Int64()),
            "day": column([None] * n if intraday else [b.date for b in received], pl.Date()),
            "open": column([b.open for b in received], pl.Float64()),
            "high": column([b.high for b in received], pl.Float64()),
            "low": column([b.low for b in received], pl.Float64()),
            "close": column([b.close for b in received], pl.Float64()),
            "volume": column([float(b.volume) for b in received], pl.Float64()).replace(-1.0, None),
            "wap": column([float(b.average) for b in received], pl.Float64()).replace(-1.0, None),
            "bar_count": column([b.barCount for b in received], pl.Int64()).replace(-1, None),
        }
    ).with_columns(
        con_id=pl.lit(target.con_id, pl.Int64),
        bar_size=pl.lit(target.spec.bar_size, pl.String),
        what_to_show=pl.lit(target.what_to_show, pl.String),
        use_rth=pl.lit(target.spec.use_rth, pl.Boolean),
    )  # fmt: skip
