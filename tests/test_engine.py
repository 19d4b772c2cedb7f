"""The engine on toy checks: unknown propagation, per-method findings, verdict ordering, exit codes."""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType

import pytest

from preflight.causes import load_catalogue
from preflight.checks import Context, Guard, Outcome, Uninterpretable, check, detached, failed, passed, warned
from preflight.engine import Exception_, evaluate
from preflight.exitcodes import Exit, exit_code
from preflight.model import Method, Severity, Status, Verdict
from preflight.providers import Registry
from preflight.resources import Payload
from preflight.snapshot import Snapshot, parse
from tests.conftest import NOW


def snap(org: dict[str, object], mailboxes: dict[str, dict[str, object]], methods: list[str]) -> Snapshot:
    return parse({
        "schema": "preflight.snapshot/v1", "provider": "microsoft", "tenant": {"domain": "contoso.com"},
        "options": {"methods": methods}, "org": org, "mailboxes": mailboxes,
    })


@check("t.secdef", "Security defaults", severity=Severity.HIGH, cause="security-defaults", scope="tenant",
       methods=(Method.BASIC,), order=30)
def secdef(ctx: Context) -> Outcome:
    if ctx.org("securityDefaults")["isEnabled"]:
        return failed("Security defaults are on.")
    return passed("Security defaults are off.")


@check("t.smtp", "SMTP AUTH", severity=Severity.HIGH, cause="smtp-auth-disabled-mailbox", order=50)
def smtp(ctx: Context) -> Outcome:
    value = ctx.mailbox("casMailbox")["SmtpClientAuthenticationDisabled"]
    return failed("SMTP AUTH is off for the mailbox.") if value else passed("SMTP AUTH is on.")


@check("t.shared", "Shared mailbox", severity=Severity.HIGH, cause="shared-mailbox", order=10)
def shared(ctx: Context) -> Outcome:
    if ctx.mailbox("mailbox")["RecipientTypeDetails"] != "SharedMailbox":
        return passed("A user mailbox.")
    if ctx.method is Method.OAUTH_APP:
        return passed("Shared mailbox: fine for app-only OAuth.")
    return failed("Shared mailbox: it cannot sign in.")


@check("t.retire", "Retirement", severity=Severity.MEDIUM, cause="basic-auth-retirement", methods=(Method.BASIC,))
def retire(ctx: Context) -> Outcome:
    return warned("Basic auth retires soon.")


class SecDef(Payload):
    isEnabled: bool


class Cas(Payload):
    SmtpClientAuthenticationDisabled: bool | None


class Mbx(Payload):
    RecipientTypeDetails: str


SCHEMA = {"securityDefaults": SecDef, "casMailbox": Cas, "mailbox": Mbx}
CHECKS = [smtp, shared, secdef, retire]
CAT = load_catalogue()
PERMS = {"casMailbox": "the Exchange role View-Only Configuration"}


def test_blocking_causes_come_in_the_order_a_sign_in_meets_them() -> None:
    s = snap({"securityDefaults": {"isEnabled": True}},
             {"jobs@contoso.com": {"casMailbox": {"SmtpClientAuthenticationDisabled": True},
                                   "mailbox": {"RecipientTypeDetails": "SharedMailbox"}}},
             ["basic", "oauth-app"])
    result = evaluate(s, CHECKS, CAT, NOW, PERMS, resources=SCHEMA)
    by_method = {v.method: v for v in result.mailboxes}
    assert by_method[Method.BASIC].verdict is Verdict.BLOCKED
    assert by_method[Method.BASIC].blocking == ["shared-mailbox", "security-defaults", "smtp-auth-disabled-mailbox"]
    assert by_method[Method.OAUTH_APP].blocking == ["smtp-auth-disabled-mailbox"]
    assert exit_code([result]) is Exit.FAIL


def test_same_outcome_for_every_method_is_one_finding_different_outcomes_are_one_each() -> None:
    s = snap({"securityDefaults": {"isEnabled": False}},
             {"a@contoso.com": {"casMailbox": {"SmtpClientAuthenticationDisabled": False},
                                "mailbox": {"RecipientTypeDetails": "SharedMailbox"}}},
             ["basic", "oauth-delegated", "oauth-app"])
    result = evaluate(s, CHECKS, CAT, NOW, resources=SCHEMA)
    smtp_findings = [f for f in result.findings if f.check == "t.smtp"]
    assert len(smtp_findings) == 1 and smtp_findings[0].method is None
    shared_findings = {f.method: f.status for f in result.findings if f.check == "t.shared"}
    assert shared_findings == {Method.BASIC: Status.FAIL, Method.OAUTH_DELEGATED: Status.FAIL,
                               Method.OAUTH_APP: Status.PASS}
    # a basic-only check says so in its finding
    assert [f.method for f in result.findings if f.check == "t.secdef"] == [Method.BASIC]


def test_a_check_that_never_read_the_method_runs_once_for_every_method() -> None:
    # Checks are pure: a run that read neither the method nor the verdict for it gives every method that answer.
    runs: list[str] = []

    @check("t.blind", "reads no method", severity=Severity.LOW, cause=None)
    def blind(ctx: Context) -> Outcome:
        runs.append("blind")
        return passed("The same for every method.")

    @check("t.derived", "reads the method through a derived context", severity=Severity.LOW, cause=None)
    def derived(ctx: Context) -> Outcome:
        runs.append("derived")
        return passed(f"For {dataclasses.replace(ctx, subject=ctx.subject).method.value}.")

    @check("t.configured", "reads the verdict", severity=Severity.LOW, cause=None, evidence=True)
    def configured(ctx: Context) -> Outcome:
        runs.append("configured")
        return passed(f"Configuration {ctx.configured.verdict.value if ctx.configured else None}.")

    s = snap({}, {"a@contoso.com": {}}, ["basic", "oauth-delegated", "oauth-app"])
    result = evaluate(s, [blind, derived, configured], CAT, NOW, resources=SCHEMA)
    assert runs == ["blind", *["derived"] * 3, *["configured"] * 3]
    assert [(f.check, f.method) for f in result.findings if f.check == "t.blind"] == [("t.blind", None)]
    assert [f.method for f in result.findings if f.check == "t.derived"] == list(Method)


def test_a_guard_is_asked_once_per_address() -> None:
    asked: list[str | None] = []
    gone = Guard(lambda ctx: asked.append(ctx.subject) or ctx.subject == "gone@contoso.com", reads=())
    s = snap({}, {"a@contoso.com": {"mailbox": {"RecipientTypeDetails": "UserMailbox"}}, "gone@contoso.com": {}},
             ["basic", "oauth-app"])
    result = evaluate(s, [gone(shared), gone(retire)], CAT, NOW, resources=SCHEMA)
    assert asked == ["a@contoso.com", "gone@contoso.com"]
    assert {(f.check, f.subject) for f in result.findings} == {("t.shared", "a@contoso.com"),
                                                                ("t.retire", "a@contoso.com")}


def test_unreadable_resource_is_unknown_with_what_to_grant_never_pass() -> None:
    s = snap({"securityDefaults": {"isEnabled": False}},
             {"a@contoso.com": {"casMailbox": {"error": {"status": 403, "code": "Forbidden", "message": "no"}},
                                "mailbox": {"RecipientTypeDetails": "UserMailbox"}}},
             ["oauth-app"])
    result = evaluate(s, CHECKS, CAT, NOW, PERMS, resources=SCHEMA)
    f = next(f for f in result.findings if f.check == "t.smtp")
    assert f.status is Status.UNKNOWN
    assert "403 Forbidden" in f.message and "View-Only Configuration" in f.message
    assert f.remediation and "View-Only Configuration" in f.remediation
    assert result.mailboxes[0].verdict is Verdict.INCOMPLETE
    assert exit_code([result]) is Exit.INCOMPLETE


def test_missing_and_malformed_resources_are_unknown_not_a_crash() -> None:
    s = snap({"securityDefaults": "not an object"},
             {"a@contoso.com": {"mailbox": {"RecipientTypeDetails": "UserMailbox"}}}, ["basic"])
    result = evaluate(s, CHECKS, CAT, NOW, resources=SCHEMA)
    statuses = {f.check: f for f in result.findings}
    assert statuses["t.smtp"].status is Status.UNKNOWN and "not collected" in statuses["t.smtp"].message
    assert statuses["t.secdef"].status is Status.UNKNOWN and "documented shape" in statuses["t.secdef"].message


def test_warnings_make_at_risk_and_fail_on_warn_turns_them_into_exit_1() -> None:
    s = snap({"securityDefaults": {"isEnabled": False}},
             {"a@contoso.com": {"casMailbox": {"SmtpClientAuthenticationDisabled": False},
                                "mailbox": {"RecipientTypeDetails": "UserMailbox"}}}, ["basic"])
    result = evaluate(s, CHECKS, CAT, NOW, resources=SCHEMA)
    assert result.mailboxes[0].verdict is Verdict.AT_RISK
    assert exit_code([result]) is Exit.OK
    assert exit_code([result], "warn") is Exit.FAIL
    retire_f = next(f for f in result.findings if f.check == "t.retire")
    assert retire_f.remediation and "OAuth" in retire_f.remediation


def test_accepted_exceptions_apply_until_they_expire() -> None:
    s = snap({"securityDefaults": {"isEnabled": True}},
             {"a@contoso.com": {"casMailbox": {"SmtpClientAuthenticationDisabled": False},
                                "mailbox": {"RecipientTypeDetails": "UserMailbox"}}}, ["basic"])
    exc = [Exception_("security-defaults", "moving to OAuth in Q1", expires=date(2026, 12, 31))]
    result = evaluate(s, CHECKS, CAT, NOW, exceptions=exc, resources=SCHEMA)
    f = next(f for f in result.findings if f.check == "t.secdef")
    assert f.status is Status.FAIL and f.accepted == "moving to OAuth in Q1 until 2026-12-31"
    assert result.mailboxes[0].verdict is Verdict.AT_RISK and exit_code([result]) is Exit.OK
    later = evaluate(s, CHECKS, CAT, datetime(2027, 1, 2, tzinfo=UTC), exceptions=exc, resources=SCHEMA)
    assert exit_code([later]) is Exit.FAIL


def test_sign_in_errors_win() -> None:
    s = snap({"securityDefaults": {"isEnabled": True}}, {"a@contoso.com": {}}, ["basic"])
    result = evaluate(s, CHECKS, CAT, NOW, resources=SCHEMA)
    result.errors.append("could not sign in")
    assert exit_code([result]) is Exit.SIGN_IN


def test_a_guard_gives_no_finding_for_a_missing_address_and_declares_what_it_reads() -> None:
    gone = Guard(lambda ctx: ctx.subject == "gone@contoso.com", reads=("user",))
    guarded = gone(smtp)
    assert guarded.reads == ("user",)
    s = snap({}, {"jobs@contoso.com": {"casMailbox": {"SmtpClientAuthenticationDisabled": True}},
                  "gone@contoso.com": {}}, ["basic"])
    result = evaluate(s, [guarded], load_catalogue(), NOW, resources=SCHEMA)
    assert [(f.subject, f.status) for f in result.findings] == [("jobs@contoso.com", Status.FAIL)]


def test_an_uninterpretable_value_is_unknown_naming_it(internal_errors: list[object]) -> None:
    @check("t.future", "reads a value added later", severity=Severity.LOW, cause=None, scope="tenant")
    def future(ctx: Context) -> Outcome:
        raise Uninterpretable("perUserMfaState is 'unknownFutureValue'")

    result = evaluate(snap({}, {"a@contoso.com": {}}, ["basic"]), [future], load_catalogue(), NOW, resources=SCHEMA)
    (f,) = result.findings
    assert f.status is Status.UNKNOWN and "unknownFutureValue" in f.message
    assert internal_errors == []


def test_a_programming_error_is_unknown_for_the_user_but_logged_as_an_internal_error(
        internal_errors: list[logging.LogRecord], caplog: pytest.LogCaptureFixture) -> None:
    # A stray ValueError is a defect too: only Uninterpretable says "a value I cannot interpret".
    @check("t.typo", "has a bug", severity=Severity.LOW, cause=None, scope="tenant")
    def typo(ctx: Context) -> Outcome:
        int("not a number")
        return passed("never")

    caplog.set_level(logging.DEBUG, logger="preflight.engine")
    result = evaluate(snap({}, {"a@contoso.com": {}}, ["basic"]), [typo], load_catalogue(), NOW, resources=SCHEMA)
    (f,) = result.findings
    assert f.status is Status.UNKNOWN and "internal error (ValueError)" in f.message
    assert [r.getMessage().split(":")[0] for r in internal_errors] == ["internal error in check t.typo (basic)"]
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)  # the traceback, for --debug


@pytest.mark.parametrize(("provider", "fixture", "address", "address_check"), [
    ("microsoft", "accounts.json", "missing@contoso.com", "ms.mailbox-exists"),
    ("google", "group_address.json", "nobody@tailspin.example", "google.address"),
])
def test_one_rule_for_an_address_that_does_not_exist(provider: str, fixture: str, address: str,
                                                     address_check: str) -> None:
    plugin = Registry.from_entry_points().get(provider)
    path = Path(__file__).parent / provider / "fixtures" / fixture
    s = parse(json.loads(path.read_text(encoding="utf-8")))
    result = evaluate(s, plugin.checks(), load_catalogue(), NOW, plugin.permissions(), resources=plugin.resources())
    mine = [(f.check, f.status, f.cause) for f in result.findings if f.subject == address]
    assert mine == [(address_check, Status.FAIL, "mailbox-not-found")]
    assert {v.verdict for v in result.mailboxes if v.address == address} == {Verdict.BLOCKED}


def _every_shipped_snapshot() -> list[tuple[str, Snapshot]]:
    root = Path(__file__).resolve().parent.parent
    out = []
    for provider in ("microsoft", "google"):
        for folder in (root / "tests" / provider / "fixtures", root / "providers" / provider / "demo"):
            for path in sorted(p for p in folder.rglob("*.json") if not p.name.endswith(".expected.json")):
                out.append((provider, parse(json.loads(path.read_text(encoding="utf-8")), path.name)))
    return out


def test_an_evaluation_leaves_no_reference_cycle_behind() -> None:
    # A kept exception's traceback held the frame keeping it, and with it the frames of the whole evaluation: every
    # object of a Workspace whose group memberships were unreadable lived on until a garbage collection (issue 19).
    registry = Registry.from_entry_points()
    catalogue = load_catalogue()
    shipped = _every_shipped_snapshot()
    assert len(shipped) > 50

    def run(provider: str, s: Snapshot) -> None:
        plugin = registry.get(provider)
        evaluate(s, plugin.checks(), catalogue, NOW, plugin.permissions(), resources=plugin.resources())

    for provider, s in shipped:
        run(provider, s)  # what is made once per process (caches, compiled patterns) is made before looking
    gc.collect()
    flags = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage instead of freed
    try:
        for provider, s in shipped:
            run(provider, s)
        gc.collect()
        cyclic = [type(o).__name__ for o in gc.garbage if isinstance(o, BaseException | FrameType)]
    finally:
        gc.set_debug(flags)
        gc.garbage.clear()
    assert cyclic == []


def test_a_detached_exception_keeps_no_traceback_nor_do_those_it_chains_to() -> None:
    def raising() -> None:
        try:
            try:
                raise KeyError("first")
            except KeyError as first:
                raise ValueError("second") from first
        except ValueError:
            raise RuntimeError("third")  # noqa: B904 - its __context__ is the ValueError, on purpose

    with pytest.raises(RuntimeError) as info:
        raising()
    exc = info.value
    assert exc.__traceback__ is not None and exc.__context__ is not None
    assert detached(exc) is exc
    chained = [exc, exc.__context__, exc.__context__.__cause__]
    assert [type(e).__name__ for e in chained] == ["RuntimeError", "ValueError", "KeyError"]
    assert all(e is not None and e.__traceback__ is None for e in chained)
