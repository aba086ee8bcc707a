"""IB's error codes and texts, as the gateway sends them (IB's "Message Codes" page)."""

from __future__ import annotations

from dataclasses import dataclass

from ibfacts.messages import TIME_LENGTH_EXCEEDED


@dataclass(frozen=True)
class IBError(Exception):
    """An error reply: the code and text IB would send for the request's id."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


NO_SECURITY = IBError(200, "No security definition has been found for the request")


def ambiguous(symbol: str) -> IBError:
    return IBError(200, f"The contract description specified for {symbol} is ambiguous.")


def query_cancelled(req_id: int) -> IBError:
    return hmds(f"API historical data query cancelled: {req_id}")


def invalid_request(cause: str) -> IBError:
    return IBError(321, f"Error validating request.-'bP' : cause - {cause}")


def hmds(detail: str) -> IBError:
    return IBError(162, f"Historical Market Data Service error message:{detail}")


def pacing_violation() -> IBError:
    return hmds("Historical data request pacing violation")


def no_data(local_symbol: str, exchange: str, what_to_show: str) -> IBError:
    return hmds(f"HMDS query returned no data: {local_symbol}@{exchange} {what_to_show.title()}")


def time_length_exceeded() -> IBError:
    return hmds(f"{TIME_LENGTH_EXCEEDED}.")


def too_many_open(limit: int) -> IBError:
    return IBError(
        322,
        f"Error processing request.-'bS' : cause - Only {limit} simultaneous API historical "
        "data requests allowed.",
    )


def expired_contract() -> IBError:
    return IBError(166, "HMDS Expired Contract Violation")


def no_query(req_id: int) -> IBError:
    return IBError(366, f"No historical data query found for ticker id:{req_id}")


def contfut_end_date() -> IBError:
    return IBError(
        10339, "Setting end date/time for continuous future security type is not allowed"
    )


INVALID_END_DATE = IBError(
    10314,
    "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
    "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 15:59:00 "
    "US/Eastern  Note that there is a space between the date and time, and between the time and "
    "time-zone. You can also provide yyyymmdd-hh:mm:ss time is in UTC. Note that there is a dash "
    "between the date and time in UTC notation.",
)


IMPLIED_TIME_ZONE = IBError(
    2174,
    "Warning: You submitted request with date-time attributes without explicit time zone. "
    "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
    "US/Eastern. Implied time zone functionality will be removed in the next API release",
)
TOO_MANY_SUMMARIES = IBError(
    322,
    "Error processing request.-'Q' : cause - Maximum number of account summary requests "
    "exceeded; desubscribe to previous request first",
)
CLIENT_ID_IN_USE = IBError(
    326, "Unable to connect as the client id is already in use. Retry with a unique client id."
)
# Farm status notices (reqId -1), by code: the gateway's links to IB's data farms.
_ON_DEMAND = " but should be available upon demand"
FARM_STATUS = {
    code: IBError(code, text)
    for code, text in (
        (2103, "Market data farm connection is broken:usfarm"),
        (2104, "Market data farm connection is OK:usfarm"),
        (2105, "HMDS data farm connection is broken:ushmds"),
        (2106, "HMDS data farm connection is OK:ushmds"),
        (2107, f"HMDS data farm connection is inactive{_ON_DEMAND}.ushmds"),
        (2108, f"Market data farm connection is inactive{_ON_DEMAND}.usfarm"),
        (2157, "Sec-def data farm connection is broken:secdefnj"),
        (2158, "Sec-def data farm connection is OK:secdefnj"),
    )
}
FARM_NOTICES = tuple(FARM_STATUS[code] for code in (2104, 2106, 2158))  # at every startApi
FARMS_BROKEN = tuple(FARM_STATUS[code] for code in (2103, 2105))  # when IB's link drops
FARMS_OK = tuple(FARM_STATUS[code] for code in (2104, 2106))  # when it is back

# The gateway's link to IB's servers (codes 1100-1102 and the 2100s).
CONNECTIVITY_LOST = IBError(1100, "Connectivity between IB and Trader Workstation has been lost.")
RESTORED_DATA_LOST = IBError(
    1101, "Connectivity between IB and Trader Workstation has been restored - data lost."
)
RESTORED_DATA_KEPT = IBError(
    1102, "Connectivity between IB and Trader Workstation has been restored - data maintained."
)

# Streaming market data (IB's market data lines and their codes).
MAX_TICKERS = IBError(101, "Max number of tickers has been reached.")
DUPLICATE_TICKER = IBError(102, "Duplicate ticker ID.")
MAX_TICK_BY_TICK = IBError(10190, "Max number of tick-by-tick requests has been reached.")


def no_ticker(req_id: int) -> IBError:
    """A cancel for a streaming request the gateway does not know (never made, or dropped)."""
    return IBError(300, f"Can't find EId with tickerId:{req_id}")


def realtime_query(detail: str) -> IBError:
    return IBError(420, f"Invalid Real-time Query:{detail}")


SERVER_ERROR = hmds("HMDS server error: the request failed inside the gateway (see its log)")


def bad_request(detail: str) -> IBError:
    """A request the gateway could not read (unknown message id or malformed fields)."""
    return IBError(320, f"Error reading request: {detail}")
