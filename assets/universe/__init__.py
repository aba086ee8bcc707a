"""The universe domain: the universe file resolved into the security master (`contracts`) and
each day's option chains inside the universe's windows (`option_chains`)."""

import dagster as dg

from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains


def definitions() -> dg.Definitions:
    """The universe domain's assets (their checks are declared with them)."""
    return dg.Definitions(assets=[contracts, option_chains])
