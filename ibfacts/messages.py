"""IB's message texts that both sides need: the gateway sends them, the client recognises them.

Source: IB's "Message Codes" page of the TWS API documentation
(https://interactivebrokers.github.io/tws-api/message_codes.html, and the same page on
https://www.interactivebrokers.com/campus/ibkr-api-page/twsapi-doc/), and answers quoted in
public client code and issue threads.
"""

from __future__ import annotations

# 162 texts that mean "this span is too long for this bar size": ask for less. IB sends "Time
# length exceed max." for a span past the step table (ibfacts.bars.SMALL_BAR_STEP); a day of
# 1-second bars has been answered "invalid step" (github.com/wrighter/ib-scripts, issue 1).
TIME_LENGTH_EXCEEDED = "Time length exceed max"
INVALID_STEP = "invalid step"
SPAN_TOO_LONG = (INVALID_STEP, TIME_LENGTH_EXCEEDED)
