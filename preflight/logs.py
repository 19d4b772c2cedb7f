"""Logging for one run: a single stderr handler on the root logger, its records masked by the run's secrets.

Without --debug only preflight's own warnings are shown: a third-party library's log (msal's "Token
response is not in json format: {…}", urllib3's retries) is dropped, never printed by Python's last-resort
handler. With --debug every logger's records are shown, masked like everything else.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from preflight.errors import first_line
from preflight.runsecrets import MaskingFilter, RunSecrets

_FORMAT = "debug: %(name)s: %(message)s"


class _Handler(logging.Handler):
    """Writes to whatever sys.stderr is now (not the one at start-up), so redirection keeps working."""

    def __init__(self, secrets: RunSecrets) -> None:
        super().__init__(logging.DEBUG)
        self.secrets = secrets
        self.debug = False
        self.setFormatter(logging.Formatter(_FORMAT))
        self.addFilter(self._shown)
        self.addFilter(MaskingFilter(secrets))  # after _shown: only shown records cost a masking pass

    def _shown(self, record: logging.LogRecord) -> bool:
        if self.debug:
            return True
        return record.name.split(".", 1)[0] == "preflight" and record.levelno >= logging.WARNING

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not (self.debug and record.name.startswith("preflight")):
            # A library's traceback (msal logs one for every unreadable reply) is one line here, and so is any
            # traceback without --debug.
            exc = record.exc_info[1]
            record.exc_info, record.exc_text = None, None
            text = first_line(exc, empty="") if exc is not None else ""
            record.msg = self.secrets.mask(f"{record.msg} ({type(exc).__name__}: {text})")
        return super().format(record)

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a closed stderr must not turn a log line into a traceback
            sys.stderr.write(self.format(record) + "\n")


def _installed() -> _Handler | None:
    return next((h for h in logging.getLogger().handlers if isinstance(h, _Handler)), None)


@contextlib.contextmanager
def masked_logging(secrets: RunSecrets) -> Iterator[None]:
    """For the length of one run: every log record goes through the run's masking filter, or nowhere."""
    root = logging.getLogger()
    handler = _Handler(secrets)
    old_level, old_raise = root.level, logging.raiseExceptions
    root.addHandler(handler)
    # A library may turn propagation off for its logger tree (google-auth does on its first request): its
    # records then reach no handler and Python's last-resort handler would print them unmasked. The run's
    # handler is the last resort too.
    old_last_resort = logging.lastResort
    logging.lastResort = handler
    logging.raiseExceptions = False
    logging.captureWarnings(True)  # a library's warnings.warn text is a log record too (py.warnings), masked
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        logging.lastResort = old_last_resort
        root.setLevel(old_level)
        logging.raiseExceptions = old_raise


def enable_debug(secrets: RunSecrets | None = None) -> None:
    """--debug: every logger's records to stderr, masked. Outside main() (tests), installs a handler that
    stays (masking with `secrets`, or with patterns only). Calling it twice adds no second handler."""
    handler = _installed()
    if handler is None:
        handler = _Handler(secrets or RunSecrets())
        logging.getLogger().addHandler(handler)
    handler.debug = True
    logging.getLogger().setLevel(logging.DEBUG)
