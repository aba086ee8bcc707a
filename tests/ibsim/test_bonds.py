"""The bond maths of ibsim.market.bonds, pure: prices and yields invert each other, a bond
priced at its coupon's yield on a coupon date is at par, and CUSIP/ISIN check digits follow
their published rules."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ibsim.market.bonds import BondTerms, clean_price, cusip_check_digit, isin_of, yield_of

TEN_YEAR = BondTerms("91282CJZ5", 4.0, "20240215", "20340215")
ISSUED = datetime(2024, 2, 15, tzinfo=UTC).timestamp()
MATURES = datetime(2034, 2, 15, tzinfo=UTC).timestamp()


@given(
    at=st.floats(ISSUED, MATURES - 86_400),
    yield_pct=st.floats(0.1, 15.0),
)
def test_the_yield_of_a_price_is_the_yield_it_was_priced_at(at, yield_pct):
    t = np.array([at])
    price = clean_price(TEN_YEAR, t, np.array([yield_pct]))
    assert abs(yield_of(TEN_YEAR, t, price)[0] - yield_pct) < 1e-7


@given(at=st.floats(ISSUED, MATURES - 86_400), a=st.floats(0.1, 15.0), b=st.floats(0.1, 15.0))
def test_a_higher_yield_is_a_lower_price(at, a, b):
    t = np.array([at, at])
    low, high = sorted((a, b))
    prices = clean_price(TEN_YEAR, t, np.array([low, high]))
    assert prices[0] >= prices[1]


def test_at_its_coupons_yield_on_a_coupon_date_a_bond_is_at_par():
    on_coupon_date = np.array([MATURES - 4 * 182.625 * 86_400])
    assert abs(clean_price(TEN_YEAR, on_coupon_date, np.array([4.0]))[0] - 100) < 1e-9


def test_check_digits_of_known_cusips_and_isins():
    assert cusip_check_digit("03783310") == "0"  # Apple's CUSIP 037833100
    assert cusip_check_digit("91282CJZ") == "5"  # the 4% Treasury note of Feb 2034
    assert isin_of("037833100") == "US0378331005"
    assert isin_of("922908710") == "US9229087104"  # VFIAX
