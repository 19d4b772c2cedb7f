"""The secrets one run knows, and the one filter that masks them wherever text leaves the process.

`main()` makes one RunSecrets per run and hands it down (through `run_scope` to the commands, then
as an argument to sign-in objects, HTTP clients and the probe); an audit gives each tenant a child whose
secrets also reach the run's. Whatever learns a secret (a password read from the environment, a client
secret, a certificate passphrase, every token msal or google-auth issues) adds it here, and every text
that is shown or stored passes through `mask`: log records (preflight's and third-party loggers'),
exception texts, received SMTP lines, error bodies kept in snapshots and reports.

A secret is masked in each form it can travel in: as is, JSON-escaped, URL-escaped, HTML-escaped, and
base64 (standard and URL-safe alphabets) at each of the three byte alignments, which covers the SASL
PLAIN (`\\0user\\0password`), LOGIN and XOAUTH2 (`user=…\\x01auth=Bearer TOKEN`) encodings and any
echo of them. Matching is plain substring replacement: linear in the text for each form.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from preflight.masking import MASK, mask_secrets

MIN_SECRET = 4  # shorter values would mask ordinary text ("535", "to"); no real credential is this short
MIN_BASE64_CORE = 6  # base64 fragments shorter than this say too little to be worth masking (or to leak)


def forms(secret: str) -> set[str]:
    """Every spelling of `secret` this run must never show."""
    # Imported here: every command starts a registry, few learn a secret (explain and --help never do).
    import base64
    import html
    import json
    from urllib.parse import quote, quote_plus

    texts = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret),
        html.escape(secret),
    }
    found = set(texts)
    for text in texts:
        raw = text.encode("utf-8")
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(raw).decode("ascii"))  # alone, padding and all (AUTH LOGIN)
            for shift in range(3):  # inside a longer payload, after `shift` bytes mod 3
                encoded = encode(b"\0" * shift + raw).decode("ascii")
                # Keep only the 4-character groups made of the secret's bytes alone.
                start = 4 if shift else 0
                end = 4 * ((shift + len(raw)) // 3)
                core = encoded[start:end]
                if len(core) >= MIN_BASE64_CORE:
                    found.add(core)
    return {f for f in found if len(f) >= MIN_SECRET}


class RunSecrets:
    """A registry of one run's (or one tenant's) secrets. Thread-safe: audits read tenants in parallel."""

    def __init__(self, parent: RunSecrets | None = None) -> None:
        self._parent = parent
        self._lock = threading.Lock()
        self._values: dict[str, set[str]] = {}  # each secret -> its forms (a child takes them from here)
        self._forms: set[str] = set()
        # The forms in masking order, sorted when next asked: an audit's run registry learns every tenant's
        # tokens one tenant at a time and masks far less often, so sorting on each add was most of its cost.
        self._ordered: _Plan | None = None

    def child(self) -> RunSecrets:
        """A registry for one tenant of this run: what it learns, the run's filter masks too."""
        return RunSecrets(self)

    def add(self, *values: str | bytes | None) -> None:
        new = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values if v]
        new = [v for v in new if isinstance(v, str) and len(v.strip()) >= MIN_SECRET]
        if new:
            self._learn(new, {})

    def _learn(self, new: list[str], known: dict[str, set[str]]) -> None:
        """Add secrets, and then to the parent's registry; `known`: their forms as far as worked out (a tenant
        learns a token per mailbox owner, and its run's registry need not work out the same forms again)."""
        with self._lock:
            fresh = [v for v in new if v not in self._values]
            for value in fresh:
                found = known.get(value) or (self._parent._forms_of(value) if self._parent is not None else None)
                if found is None:
                    found = forms(value)
                known[value] = self._values[value] = found
                self._forms.update(found)
            if fresh:
                self._ordered = None
        if self._parent is not None:
            self._parent._learn(new, known)

    def _forms_of(self, value: str) -> set[str] | None:
        """The forms of a secret this registry or an ancestor knows: each tenant of an audit learns the run's
        key or client secret again, and working out its forms costs more than the tenant's sign-in."""
        with self._lock:
            found = self._values.get(value)
        if found is None and self._parent is not None:
            return self._parent._forms_of(value)
        return found

    def add_token_response(self, result: object) -> None:
        """The secrets in an OAuth token endpoint reply (msal result, google-auth credentials' fields)."""
        if isinstance(result, dict):
            self.add(*(v for k in ("access_token", "refresh_token", "id_token") if isinstance(v := result.get(k), str)))

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> tuple[str, ...]:
        """The secrets themselves: for an audit's worker process to hand a tenant's to the run's registry."""
        with self._lock:
            return tuple(self._values)

    def __bool__(self) -> bool:
        """A registry is there even while empty: `secrets or RunSecrets()` must not swap the run's registry
        for a private one just because nothing was learned yet (the client secret is read after sign-in
        objects are built, the tokens later still)."""
        return True

    def mask_known(self, text: str) -> str:
        """Only this run's own secrets: for verbatim payloads, which patterns must not alter."""
        with self._lock:
            if self._ordered is None:
                self._ordered = _plan(self._forms)
            anchors, ordered, unanchored = self._ordered
        found = {anchor for anchor in anchors if anchor in text}
        if not found and not unanchored:  # no form can be in the text: the common case, a reply echoing none
            return text
        for form, anchor in ordered:
            if (anchor is None or anchor in found) and form in text:
                text = text.replace(form, MASK)
        return text

    def mask(self, text: str) -> str:
        """The run's secrets in every form, then whatever merely looks like a credential."""
        return mask_secrets(self.mask_known(text))

    def __repr__(self) -> str:
        return f"RunSecrets({len(self._values)} secrets)"


# How long a form's start (its anchor) is looked for, with what each look at a 30 KB reply costs (us, measured):
# a longer anchor is skipped through faster, but forms that share a short start (a token issuer's prefix) may
# not share a long one, and each distinct anchor is one more look.
ANCHOR_COSTS = {32: 3.8, 24: 5.0, 16: 7.0, 8: 12.0}

# The forms longest first, each with its anchor; the anchors, each once; whether some form has none.
_Plan = tuple[tuple[str, ...], tuple[tuple[str, str | None], ...], bool]


def _plan(forms: set[str]) -> _Plan:
    """How mask_known looks for `forms`: longest first, so that a form containing a shorter one is replaced whole;
    and a form whose start (its anchor) is not in the text is not looked for, which is exact: a replacement only
    takes characters out and puts in MASK's asterisks, so a form without an asterisk is in a text only if it was
    in the text as given, start and all. A form with an asterisk could be made by a replacement: it has no anchor
    and is always looked for. A Google tenant learns a token per mailbox owner, whose forms share their starts: a
    reply is searched for a few anchors instead of a hundred forms. The anchor length is the one whose looks cost
    least in all (ANCHOR_COSTS)."""
    longest_first = sorted(forms, key=lambda f: (-len(f), f))
    plain = [form for form in longest_first if "*" not in form]
    length = min(ANCHOR_COSTS, key=lambda n: (len({form[:n] for form in plain}) * ANCHOR_COSTS[n], -n))
    ordered = tuple((form, None if "*" in form else form[:length]) for form in longest_first)
    anchors = tuple(sorted({anchor for _form, anchor in ordered if anchor is not None}))
    return anchors, ordered, any(anchor is None for _form, anchor in ordered)


_RUN: ContextVar[RunSecrets | None] = ContextVar("preflight_run_secrets", default=None)


@contextlib.contextmanager
def run_scope(secrets: RunSecrets) -> Iterator[RunSecrets]:
    """main() runs the command inside this: typer commands take no injected arguments, so the command layer
    finds the run's registry here and passes it on explicitly to everything below it."""
    token = _RUN.set(secrets)
    try:
        yield secrets
    finally:
        _RUN.reset(token)


def for_command() -> RunSecrets:
    """The registry of the run this command belongs to; a command called outside main() (a test calling
    it directly) gets a registry of its own."""
    found = _RUN.get()
    return found if found is not None else RunSecrets()


class MaskingFilter(logging.Filter):
    """Masks a record's message, arguments, exception and stack text with the run's registry.

    Attached to the one handler preflight installs on the root logger, so it sees every logger's records
    (msal, urllib3, google.auth, requests), however they were formatted.
    """

    def __init__(self, secrets: RunSecrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a third-party record whose arguments do not fit its format
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg, record.args = self.secrets.mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.secrets.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.secrets.mask(record.stack_info)
        return True
