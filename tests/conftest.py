"""Suite-wide guard: an exception a check raises after its resources were parsed is a defect in preflight.

The engine still turns it into `unknown` (a user never gets a guess or a crash), and logs it on
preflight.engine at ERROR; here any such record fails the test that caused it, so the catch-all can never
hide a programming error (a TypeError, KeyError or AttributeError from check code, or a read of a resource
with no model). A test that provokes one on purpose asks for the `internal_errors` fixture.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _collecting() -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger("preflight.engine")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def internal_errors() -> Iterator[list[logging.LogRecord]]:
    """The engine's internal-error records, for a test that provokes one on purpose (not then a failure)."""
    yield from _collecting()


@pytest.fixture(autouse=True)
def _no_internal_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    if "internal_errors" in request.fixturenames:
        yield
        return
    collecting = _collecting()
    records = next(collecting)
    yield
    collecting.close()
    if records:
        pytest.fail("internal error in a check (preflight.engine):\n" +
                    "\n".join(r.getMessage() for r in records), pytrace=False)
