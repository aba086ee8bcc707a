"""The assets' tests: a warehouse home and a universe file in the test's temp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit.universe import write_universe


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ibw"


@pytest.fixture
def universe(tmp_path: Path) -> Path:
    return write_universe(tmp_path)
