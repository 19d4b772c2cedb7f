"""Every report format on one report that has every status, verdict and a few hostile payload values."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from preflight.causes import load_catalogue
from preflight.model import Finding, MailboxVerdict, Method, Report, Severity, Status, TargetResult, Verdict
from preflight.report import FORMATS, render
from preflight.report.read import parse_report
from preflight_providers.microsoft.resources import RESOURCES

SCRIPT = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
PIPE = "a|b"
ESC = "\x1b[31mred\x1b[0m"
CAT = load_catalogue()


def fix(cause: str, provider: str, subject: str | None) -> str:
    return CAT.get(cause).fix(provider, subject)


def finding(check: str, title: str, status: Status, severity: Severity, cause: str | None, subject: str | None,
            message: str, provider: str = "microsoft", method: Method | None = None, accepted: str | None = None,
            evidence: dict[str, object] | None = None, remediation: str | None = None) -> Finding:
    if remediation is None and cause and status in (Status.FAIL, Status.WARN):
        remediation = fix(cause, provider, subject)
    return Finding(check, title, status, severity, cause if status not in (Status.PASS, Status.SKIPPED) else None,
                   subject, message, evidence or {}, remediation, method, accepted)


JOBS, CAREERS, HOSTILE = "jobs@contoso.com", "careers@contoso.com", "it|ops@contoso.com"
HR = "hr@fabrikam.com"
B, APP = Method.BASIC, Method.OAUTH_APP


def contoso() -> TargetResult:
    f = [
        finding("ms.security-defaults", "Security defaults", Status.FAIL, Severity.HIGH, "security-defaults", None,
                "Security defaults are on (securityDefaults.isEnabled: true): Basic SMTP sign-in is blocked.",
                method=B, evidence={"securityDefaults.isEnabled": True}),
        finding("ms.smtp-auth-org", "SMTP AUTH (organisation)", Status.PASS, Severity.HIGH, None, None,
                "SMTP AUTH is on for the organisation (TransportConfig.SmtpClientAuthenticationDisabled: false).",
                evidence={"transportConfig.SmtpClientAuthenticationDisabled": False}),
        finding("ms.basic-retirement", "Basic auth retirement", Status.WARN, Severity.MEDIUM, "basic-auth-retirement",
                None, "Microsoft disables Basic auth for SMTP AUTH by default at the end of December 2026.",
                method=B, evidence={"retirement.disabledByDefault": "2026-12-31"}),
        finding("ms.shared-mailbox", "Mailbox type", Status.FAIL, Severity.HIGH, "shared-mailbox", CAREERS,
                "careers@contoso.com is a shared mailbox (Get-Mailbox RecipientTypeDetails: SharedMailbox).",
                method=B, evidence={"mailbox.RecipientTypeDetails": "SharedMailbox"}),
        finding("ms.shared-mailbox", "Mailbox type", Status.PASS, Severity.HIGH, None, CAREERS,
                "Shared mailbox: fine for app-only OAuth.", method=APP),
        finding("ms.smtp-auth-mailbox", "SMTP AUTH (mailbox)", Status.FAIL, Severity.HIGH,
                "smtp-auth-disabled-mailbox", JOBS,
                f"SMTP AUTH is off for {JOBS} (CASMailbox.SmtpClientAuthenticationDisabled: true). Note: {SCRIPT}",
                evidence={"casMailbox.SmtpClientAuthenticationDisabled": True, "mailbox.DisplayName": SCRIPT,
                          "casMailbox.Identity": PIPE, "memberOf": [{"displayName": "Sales", "id": "1"}]}),
        finding("ms.smtp-auth-mailbox", "SMTP AUTH (mailbox)", Status.FAIL, Severity.HIGH,
                "smtp-auth-disabled-mailbox", CAREERS, "SMTP AUTH is off for careers@contoso.com.",
                accepted="Replaced by Graph sendMail in Q1 until 2027-03-31"),
        finding("ms.app-role", "SMTP.SendAsApp role", Status.UNKNOWN, Severity.HIGH, "oauth-app-not-authorized",
                CAREERS, "Could not read servicePrincipalAppRoles (403 Forbidden).", method=APP,
                evidence={"resource": "servicePrincipalAppRoles", "error": "403 Forbidden",
                          "grant": "Microsoft Graph Application.Read.All"},
                remediation="Grant Microsoft Graph Application.Read.All to the account preflight signs in with, "
                            "then re-run."),
        finding("ms.send-as", "Send As", Status.SKIPPED, Severity.MEDIUM, None, JOBS,
                "No different From address was given.", evidence={}),
        finding("ms.ca-legacy", "Conditional Access: legacy authentication", Status.FAIL, Severity.HIGH,
                "ca-legacy-auth-block", HOSTILE, f"Policy '{PIPE}' blocks legacy clients {ESC}.", method=B,
                evidence={"policy.displayName": PIPE}),
    ]
    mv = [
        MailboxVerdict(JOBS, B, Verdict.BLOCKED, ["security-defaults", "smtp-auth-disabled-mailbox"]),
        MailboxVerdict(JOBS, APP, Verdict.BLOCKED, ["smtp-auth-disabled-mailbox"]),
        MailboxVerdict(CAREERS, B, Verdict.BLOCKED, ["shared-mailbox", "security-defaults"]),
        MailboxVerdict(CAREERS, APP, Verdict.INCOMPLETE, []),
        MailboxVerdict(HOSTILE, B, Verdict.BLOCKED, ["security-defaults", "ca-legacy-auth-block"]),
        MailboxVerdict(HOSTILE, APP, Verdict.READY, []),
    ]
    return TargetResult("Contoso", "microsoft", "contoso.com", mv, f)


def fabrikam() -> TargetResult:
    f = [
        finding("g.less-secure-apps", "Password sign-in", Status.WARN, Severity.MEDIUM, "app-password-required", HR,
                "2-Step Verification is enforced for hr@fabrikam.com: use an app password.", provider="google",
                method=B, evidence={"user.isEnrolledIn2Sv": True}),
        finding("g.user", "Account", Status.PASS, Severity.HIGH, None, HR, "hr@fabrikam.com is an active user.",
                provider="google", evidence={"user.suspended": False}),
    ]
    mv = [MailboxVerdict(HR, B, Verdict.AT_RISK, []),
          MailboxVerdict(HR, Method.OAUTH_DELEGATED, Verdict.READY, [])]
    return TargetResult(FORMULA, "google", "fabrikam.com", mv, f)


def unreachable() -> TargetResult:
    return TargetResult("Tailspin", "microsoft", "tailspin.example", [], [],
                        ["Could not sign in: AADSTS7000215: Invalid client secret provided."])


@pytest.fixture(scope="module")
def report() -> Report:
    return Report([contoso(), fabrikam(), unreachable()], "2026-11-26T10:00:00Z", "0.1.0")


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]")


def all_formats(report: Report) -> dict[str, str]:
    return {fmt: render(report, fmt, color=False, width=80) for fmt in FORMATS}


# --- table -------------------------------------------------------------------------------------------------


def test_table_puts_verdicts_first_then_each_issue_with_its_fix(report: Report) -> None:
    text = render(report, "table", color=False, width=80)
    contoso_part = text[: text.index("(google, fabrikam.com)")]
    lines = contoso_part.splitlines()
    # The verdict table comes before any finding, one row per mailbox × method.
    verdict_header = next(i for i, line in enumerate(lines) if line.startswith("Mailbox"))
    first_finding = next(i for i, line in enumerate(lines) if line.startswith("FAIL"))
    assert verdict_header < first_finding
    rows = [line for line in lines[verdict_header:first_finding] if re.search(r"\b(basic|oauth-app)\b", line)]
    assert [re.search(r"(blocked|ready|incomplete|at-risk)", r).group(1) for r in rows] == [  # type: ignore[union-attr]
        "blocked", "blocked", "blocked", "incomplete", "blocked", "ready"]
    flat = " ".join(text.split())
    # First blocking cause by its catalogue title, and what is unknown for the incomplete one.
    assert CAT.get("shared-mailbox").title in " ".join(" ".join(lines).split())
    assert "unknown: SMTP.SendAsApp role" in flat
    # Each failing / warning / unknown finding: message and fix; accepted shown as accepted, not failed.
    assert "Security defaults are on (securityDefaults.isEnabled: true)" in flat
    assert "Fix: Set-CASMailbox -Identity jobs@contoso.com -SmtpClientAuthenticationDisabled $false" in flat
    assert "To make this known: Grant Microsoft Graph Application.Read.All" in flat
    assert re.search(r"^ACCEPTED\s+SMTP AUTH \(mailbox\)", text, re.M)
    assert "Accepted: Replaced by Graph sendMail" in flat
    assert "Not evaluated: Could not sign in: AADSTS7000215" in flat
    # Passed and skipped findings are not listed, tenant-wide findings appear once per target.
    assert "Shared mailbox: fine for app-only OAuth" not in flat
    assert "No different From address was given" not in flat
    assert flat.count("Security defaults are on") == 1
    assert text.count("Tenant-wide") == 1


def test_table_without_colour_has_no_ansi_even_from_hostile_payloads(report: Report) -> None:
    text = render(report, "table", color=False, width=80)
    assert "\x1b" not in text
    assert SCRIPT in text  # a terminal shows it literally
    assert "[31mred" in text and "\ufffd" in text  # the ESC byte from the payload was neutralised


def test_table_fits_the_width_it_is_given(report: Report) -> None:
    for width in (80, 120):
        text = render(report, "table", color=False, width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert not any(line != line.rstrip() for line in text.splitlines())


def test_table_without_a_width_follows_the_terminal(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    lines = render(report, "table", color=False).splitlines()
    assert max(len(line) for line in lines) == 72  # the target rule spans the terminal


def test_table_with_colour_colours_verdicts_but_payload_cannot_inject_escapes(report: Report) -> None:
    text = render(report, "table", color=True, width=100)
    assert "\x1b[1;31mblocked" in text and "\x1b[1;32mready" in text
    # Every ESC in the output starts a style sequence rich wrote; the payload's own ESC bytes are gone.
    assert "\x1b[31mred" not in text


def test_table_markup_in_payload_is_literal() -> None:
    hostile = TargetResult("[bold red]T[/]", "microsoft", "t.example",
                           [MailboxVerdict("a@t.example", B, Verdict.BLOCKED, ["no-such-cause"])],
                           [finding("x.y", "[link=https://evil.example]click[/link]", Status.FAIL, Severity.LOW,
                                    "no-such-cause", "a@t.example", "[red]msg[/red]", remediation="[b]do[/b]")])
    text = render(Report([hostile], "2026-11-26T10:00:00Z", "0.1.0"), "table", color=False, width=100)
    assert "[bold red]T[/]" in text and "[red]msg[/red]" in text and "[b]do[/b]" in text
    assert "[link=https://evil.example]click[/link]" in text
    # A blocking id outside the catalogue is explained by the finding that named it, not dropped.
    why = text[text.index("blocked"):].split("\n")[0]
    assert "[link=https://evil.example]click" in why


# --- markdown ----------------------------------------------------------------------------------------------


def unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_has_the_same_content_with_escaped_table_cells(report: Report) -> None:
    text = render(report, "markdown")
    assert text.startswith("# SMTP readiness report\n\nGenerated 2026-11-26 10:00 UTC by preflight 0.1.0.")
    assert "## Contoso (microsoft, contoso.com)" in text
    tables = [block.splitlines() for block in re.findall(r"(?m)(?:^\|.*\n)+", text)]
    assert len(tables) == 3  # the overview and one verdict table per evaluated target
    for table in tables:
        assert len({unescaped_pipes(line) for line in table}) == 1, table
    assert r"| it\|ops@contoso.com | basic | ❌ **blocked** |" in text
    assert r"| careers@contoso.com | oauth-app | ❔ **incomplete** | unknown: SMTP.SendAsApp role |" in text
    assert r"Policy 'a\|b' blocks legacy clients" in text
    # Raw HTML from a payload is escaped, so no renderer turns it into a tag.
    assert SCRIPT not in text and r"\<script>alert(1)\</script>" in text
    assert "**Fix:** Set-CASMailbox -Identity jobs@contoso.com" in text
    assert "**To make this known:** Grant Microsoft Graph Application.Read.All" in text
    assert "☑️ **ACCEPTED**" in text and "*Accepted:* Replaced by Graph sendMail" in text
    assert "> **Not evaluated:** Could not sign in: AADSTS7000215" in text
    assert "\x1b" not in text
    # Overview across targets, with the target that could not be read saying so.
    assert "| Tailspin | microsoft | tailspin.example | not evaluated |" in text


def test_markdown_escapes_emphasis_links_and_code() -> None:
    t = TargetResult("T", "google", "t.example", [], [
        finding("g.x", "Title", Status.FAIL, Severity.LOW, "wrong-credentials", None,
                "*bold* _it_ `code` [link](https://evil.example) ~~s~~ &amp; # h", provider="google")])
    text = render(Report([t], "2026-11-26T10:00:00Z", "0.1.0"), "markdown")
    assert r"\*bold\* \_it\_ \`code\` \[link\](https://evil.example) \~\~s\~\~ \&amp; \# h" in text


# --- html --------------------------------------------------------------------------------------------------


class Collector(HTMLParser):
    """Parses the page the way a browser tokenizer would and keeps what the assertions need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


VOID = {"meta", "br", "hr", "img", "link", "input", "wbr"}


def parse_html(text: str) -> Collector:
    c = Collector()
    c.feed(text)
    c.close()
    assert c.stack == [], c.stack
    return c


def test_html_is_one_self_contained_well_formed_file(report: Report) -> None:
    text = render(report, "html")
    assert text.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    page = parse_html(text)
    names = [t for t, _ in page.tags]
    assert names.count("html") == names.count("head") == names.count("body") == names.count("style") == 1
    # One inline script, the copy buttons' (a page that cannot run it still reads and prints the same).
    from preflight.report.html import COPY_SCRIPT

    assert names.count("script") == 1 and f"<script>{COPY_SCRIPT}</script>" in text
    assert "link" not in names and "img" not in names and "iframe" not in names
    for tag, attrs in page.tags:
        assert "src" not in attrs, tag
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)  # no event handlers
        href = attrs.get("href")
        if href is not None:
            # Internal anchors, or documentation links that come from the cause catalogue.
            assert href.startswith("#") or any(href in c.docs for c in CAT.causes), href
    style = text[text.index("<style>"): text.index("</style>")]
    assert "url(" not in style and "@import" not in style and "http" not in style
    assert "@media print" in style and "break-before:page" in style


def test_html_escapes_every_payload_value(report: Report) -> None:
    text = render(report, "html")
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # in the message and in the evidence
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2
    assert "=cmd|&#x27; /C calc&#x27;!A0" in text
    assert "\x1b" not in text
    # The escaped text reads back as the original in the browser's text.
    flat = " ".join(parse_html(text).text)
    assert SCRIPT in flat and FORMULA in flat


def test_html_summary_matrix_and_findings(report: Report) -> None:
    text = render(report, "html")
    page = parse_html(text)
    flat = " ".join(" ".join(page.text).split())
    assert "Generated 2026-11-26 10:00 UTC" in flat and "preflight 0.1.0" in flat
    assert "<title>SMTP readiness report · 2026-11-26</title>" in text
    # Tiles: counts by verdict over mailbox × method.
    assert re.search(r'<div class="n">4</div><div class="l">Blocked</div>', text)
    assert re.search(r'<div class="n">2</div><div class="l">Ready</div>', text)
    assert "5 Fail" in flat and "2 Warning" in flat and "1 Unknown" in flat and "1 accepted as exceptions" in flat
    # Matrix: one row per mailbox, one column per method, chips that carry a text label, not colour only.
    contoso_html = text[text.index('id="target-1"'): text.index('id="target-2"')]
    matrix = contoso_html[contoso_html.index('<table class="verdicts">'): contoso_html.index("</table>")]
    assert matrix.count("<tr>") == 4  # header + 3 mailboxes
    assert '<th scope="col">Basic (password)</th><th scope="col">OAuth, app-only</th>' in matrix
    assert matrix.count('class="chip s-blocked">✕ Blocked</span>') == 4
    assert 'class="chip s-incomplete">? Incomplete</span><span class="why">unknown: SMTP.SendAsApp role' in matrix
    # A mailbox blocked by several layers lists them all, in the order a sign-in meets them.
    titles = [CAT.get(c).title for c in ("shared-mailbox", "security-defaults")]
    assert "".join(f"<li>{t}</li>" for t in titles) in matrix
    assert f'<span class="why">{CAT.get("smtp-auth-disabled-mailbox").title}</span>' in matrix
    # Findings: message, evidence as key/value, fix; unknown says what to grant; accepted shown as accepted.
    assert "<dt>casMailbox.SmtpClientAuthenticationDisabled</dt><dd>true</dd>" in contoso_html
    assert '<dt>memberOf</dt><dd>[{&quot;displayName&quot;: &quot;Sales&quot;, &quot;id&quot;: &quot;1&quot;}]</dd>' \
        in contoso_html
    assert "<b>To make this known</b><p>Grant Microsoft Graph Application.Read.All" in contoso_html
    assert '<span class="chip s-accepted">✓ Accepted</span>' in contoso_html
    assert "Accepted exception:</strong> Replaced by Graph sendMail" in contoso_html
    assert '<a href="https://learn.microsoft.com/' in contoso_html  # docs for the Microsoft target...
    assert "support.google.com" not in contoso_html  # ...not the Google ones
    # The record of what passed stays in the file, expanded so it prints.
    assert '<details class="rest" open><summary>Checks passed or not applicable (3)</summary>' in contoso_html
    assert "Not evaluated:</strong> Could not sign in: AADSTS7000215" in text


# --- junit -------------------------------------------------------------------------------------------------


def test_junit_parses_back_with_one_testcase_per_finding(report: Report) -> None:
    text = render(report, "junit")
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["Contoso (microsoft, contoso.com)", f"{FORMULA} (google, fabrikam.com)",
                                               "Tailspin (microsoft, tailspin.example)"]
    contoso_suite = suites[0]
    cases = contoso_suite.findall("testcase")
    assert len(cases) == len(contoso().findings)
    assert {c.get("classname") for c in cases} == {"microsoft.Contoso"}
    by_name = {c.get("name"): c for c in cases}
    sd = by_name["ms.security-defaults [tenant-wide] (basic)"]
    failure = sd.find("failure")
    assert failure is not None and failure.get("type") == "security-defaults"
    assert "Fix: Use OAuth" in (failure.text or "")
    unknown = by_name["ms.app-role [careers@contoso.com] (oauth-app)"].find("error")
    assert unknown is not None and "To make this known: Grant Microsoft Graph" in (unknown.text or "")
    accepted = by_name["ms.smtp-auth-mailbox [careers@contoso.com] (all methods)"]
    assert accepted.find("failure") is None
    assert (accepted.find("skipped") is not None
            and accepted.find("skipped").get("message", "").startswith("accepted: Replaced"))  # type: ignore[union-attr]
    assert by_name["ms.send-as [jobs@contoso.com] (all methods)"].find("skipped") is not None
    warn = by_name["ms.basic-retirement [tenant-wide] (basic)"]
    assert warn.find("failure") is None and warn.find("error") is None
    assert warn.find("properties/property[@name='status']").get("value") == "warn"  # type: ignore[union-attr]
    assert "WARNING:" in (warn.findtext("system-out") or "")
    passed = by_name["ms.smtp-auth-org [tenant-wide] (all methods)"]
    assert list(passed) == []
    hostile = by_name["ms.smtp-auth-mailbox [jobs@contoso.com] (all methods)"].find("failure")
    assert hostile is not None and SCRIPT in hostile.get("message", "")
    assert (contoso_suite.get("tests"), contoso_suite.get("failures"), contoso_suite.get("errors"),
            contoso_suite.get("skipped")) == ("10", "4", "1", "2")
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("13", "4", "2", "2")
    # A target that was never read is an error, so CI cannot pass on it.
    tailspin = suites[2].find("testcase/error")
    assert tailspin is not None and "AADSTS7000215" in tailspin.get("message", "")
    assert "\x1b" not in text


# --- csv ---------------------------------------------------------------------------------------------------


def test_csv_parses_back_one_row_per_finding_with_formulas_neutralised(report: Report) -> None:
    text = render(report, "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == ["target", "provider", "tenant", "subject", "method", "check", "status", "severity",
                             "cause", "message", "remediation", "accepted"]
    findings = sum(len(t.findings) for t in report.targets)
    assert len(rows) == findings + 1  # + the row for the target that could not be read
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    fab = [r for r in rows if r["provider"] == "google"]
    assert fab and all(r["target"] == "'" + FORMULA for r in fab)
    jobs = next(r for r in rows if r["check"] == "ms.smtp-auth-mailbox" and r["subject"] == JOBS)
    assert jobs["method"] == "all" and jobs["status"] == "fail" and SCRIPT in jobs["message"]
    assert jobs["remediation"].startswith("Set-CASMailbox -Identity jobs@contoso.com")
    sd = next(r for r in rows if r["check"] == "ms.security-defaults")
    assert sd["subject"] == "" and sd["method"] == "basic" and sd["cause"] == "security-defaults"
    accepted = next(r for r in rows if r["accepted"])
    assert accepted["subject"] == CAREERS and accepted["accepted"].startswith("Replaced by Graph")
    unknown = next(r for r in rows if r["status"] == "unknown" and r["check"] == "ms.app-role")
    assert unknown["remediation"].startswith("Grant Microsoft Graph Application.Read.All")
    ca = next(r for r in rows if r["check"] == "ms.ca-legacy")
    assert "a|b" in ca["message"] and "\x1b" not in ca["message"]
    tail = next(r for r in rows if r["target"] == "Tailspin")
    assert tail["status"] == "unknown" and "AADSTS7000215" in tail["message"]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_formula_prefixes(value: str) -> None:
    t = TargetResult("T", "microsoft", "t.example", [], [
        finding("c", "t", Status.FAIL, Severity.LOW, None, "a@t.example", value, remediation=value)])
    rows = list(csv.reader(io.StringIO(render(Report([t], "x", "0"), "csv"), newline="")))
    # A lone carriage return is a control character and is replaced first, which also defuses it.
    expected = "\ufffd=1" if value.startswith("\r") else "'" + value
    assert rows[1][9] == expected and rows[1][10] == expected


# --- all formats -------------------------------------------------------------------------------------------


def test_json_round_trips(report: Report) -> None:
    data = json.loads(render(report, "json"))
    assert data["schema"] == "preflight.report/v1"
    assert parse_report(data, "report.json").to_dict() == report.to_dict()


def test_every_format_renders_an_empty_report_and_none_leaks_ansi(report: Report) -> None:
    empty = Report([], "2026-11-26T10:00:00Z", "0.1.0")
    for fmt, text in all_formats(empty).items():
        assert text, fmt
    for fmt, text in all_formats(report).items():
        assert not ANSI.search(text), fmt
        assert "\x1b" not in text or fmt == "json", fmt  # JSON keeps the payload verbatim, escaped as \u001b


@pytest.mark.slow
def test_renderers_do_not_import_rich_except_the_table() -> None:
    import subprocess
    import sys

    code = ("import sys; from preflight.report import html, markdown, junit, csv, common; "
            "print(any(m == 'rich' or m.startswith('rich.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- on the engine's own output ----------------------------------------------------------------------------


def test_engine_output_renders_what_to_grant_once_in_compact_formats() -> None:
    from datetime import UTC, datetime

    from preflight.checks import Context, Outcome, check, failed, passed
    from preflight.engine import evaluate
    from preflight.snapshot import parse

    @check("t.secdef", "Security defaults", severity=Severity.HIGH, cause="security-defaults", scope="tenant",
           methods=(Method.BASIC,), order=30)
    def secdef(ctx: Context) -> Outcome:
        return failed("Security defaults are on.") if ctx.org("securityDefaults")["isEnabled"] else passed("Off.")

    snap = parse({
        "schema": "preflight.snapshot/v1", "provider": "microsoft", "tenant": {"domain": "contoso.com"},
        "options": {"methods": ["basic"]}, "mailboxes": {JOBS: {}},
        "org": {"securityDefaults": {"error": {"status": 403, "code": "Forbidden",
                                               "message": "Insufficient privileges to complete the operation."}}},
    })
    grant = "Microsoft Graph Policy.Read.All"
    result = evaluate(snap, [secdef], CAT, datetime(2026, 11, 26, tzinfo=UTC), {"securityDefaults": grant},
                      resources=RESOURCES)
    assert result.mailboxes[0].verdict is Verdict.INCOMPLETE and result.findings[0].status is Status.UNKNOWN
    report = Report([result], "2026-11-26T10:00:00Z", "0.1.0")
    table = " ".join(render(report, "table", width=100).split())
    assert table.count(grant) == 1 and "Insufficient privileges" in table
    assert "unknown: Security defaults" in table  # why the verdict is incomplete
    assert render(report, "markdown").count(grant) == 1
    html = render(report, "html")
    # the message says what to grant; the action plan gathers it with every other grant, once
    assert "To make this known" not in html and f"<li>Grant {grant} (1 check could not read what they need)" in html
    assert "<title>contoso.com · SMTP readiness report · 2026-11-26</title>" in html
    assert 'class="chip s-incomplete">? Incomplete</span>' in html
    error = ET.fromstring(render(report, "junit")).find("testsuite/testcase/error")
    assert error is not None and "Insufficient privileges" in error.get("message", "")


# --- findings identical but for their method ---------------------------------------------------------------


def test_human_formats_show_findings_identical_but_for_method_once_data_formats_keep_each() -> None:
    D = Method.OAUTH_DELEGATED
    unknown = "Could not read user of jobs@contoso.com (403 Forbidden). Grant Microsoft Graph User.Read.All."

    def alias(method: Method, message: str = unknown) -> Finding:
        return finding("ms.alias-address", "Address is the sign-in name", Status.UNKNOWN, Severity.HIGH,
                       "alias-address", JOBS, message, method=method,
                       evidence={"grant": "Microsoft Graph User.Read.All"})

    findings = [
        alias(D),
        alias(B),
        alias(APP, "Some other answer."),
        finding("ms.send-as", "Send As", Status.PASS, Severity.MEDIUM, None, JOBS, "Send As is granted.", method=APP),
        finding("ms.send-as", "Send As", Status.PASS, Severity.MEDIUM, None, JOBS, "Send As is granted.", method=B),
    ]
    mv = [MailboxVerdict(JOBS, m, Verdict.INCOMPLETE, []) for m in (B, D, APP)]
    one = Report([TargetResult("Contoso", "microsoft", "contoso.com", mv, findings)], "2026-11-26T10:00:00Z", "0.1.0")
    out = all_formats(one)

    table = " ".join(out["table"].split())
    assert table.count(unknown) == 1 and "high · basic, oauth-delegated · ms.alias-address" in table
    assert "Some other answer." in table and "high · oauth-app · ms.alias-address" in table
    markdown = out["markdown"]
    assert markdown.count(unknown) == 1 and " · basic, oauth-delegated · `ms.alias-address`" in markdown
    html = out["html"]
    assert html.count(unknown) == 1 and "high severity · basic, oauth-delegated · <code>" in html
    assert html.count("Send As is granted.") == 1 and "<td>basic, oauth-app</td>" in html
    assert "Checks passed or not applicable (1)" in html

    assert len(json.loads(out["json"])["targets"][0]["findings"]) == 5
    rows = list(csv.DictReader(io.StringIO(out["csv"], newline="")))
    assert [r["method"] for r in rows if r["message"] == unknown] == ["oauth-delegated", "basic"]
    cases = ET.fromstring(out["junit"]).findall("testsuite/testcase")
    assert len(cases) == 5 and sum(1 for c in cases if c.find("error") is not None) == 3


# --- fixes never contradict their finding's evidence ---------------------------------------------------------

def shipped_results() -> list[tuple[str, TargetResult]]:
    """Every demo tenant and test fixture, evaluated as the CLI would."""
    from pathlib import Path

    from preflight.pipeline import as_of_date, default_registry, evaluate_snapshots

    root = Path(__file__).resolve().parents[1]
    files = sorted([*root.glob("*/fixtures/*.json"), *(root.parent / "providers").glob("*/demo/*.json")])
    registry = default_registry()
    return [(f.name, t) for f in files for t in evaluate_snapshots([f], registry, as_of_date("2026-11-26"))]


ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
SECURITY_KEY_ONLY = "security.two_step_verification_enforcement_factor.allowedSignInFactorSet"


def contradictions(f: Finding) -> list[str]:
    """What in the fix the finding's own evidence rules out."""
    fix, ev, found = (f.remediation or ""), f.evidence, []
    low = fix.lower()
    if ev.get("user.isEnforcedIn2Sv") is True and ev.get(SECURITY_KEY_ONLY) == "PASSKEY_ONLY" and \
            "create an app password" in low and "security key" not in low:
        found.append("security keys only are enforced, yet the fix says to create an app password")
    if ev.get("user.isEnrolledIn2Sv") is True and "turn on 2-step verification for" in low:
        found.append("already enrolled in 2-Step Verification, yet the fix says to turn it on")
    owner = next((str(ev[k]).lower() for k in ("user.primaryEmail", "user.userPrincipalName")
                  if isinstance(ev.get(k), str)), None)
    if f.subject and owner and owner != f.subject:
        said = re.search(rf"(?<!not )(?<!do not )sign(?:ed)? in as {re.escape(f.subject)}(?![\w.@-])", fix,
                         re.IGNORECASE)
        if said:
            found.append(f"{f.subject} is an alias of {owner}, yet the fix signs in as the alias")
    if ev.get("mailbox.RecipientTypeDetails") == "SharedMailbox" and f.subject and re.search(
            rf"(?<!not )sign in as {re.escape(f.subject)}", fix, re.IGNORECASE):
        found.append("a shared mailbox cannot sign in, yet the fix signs in as it")
    if re.search(r"\{\w+\}", fix) or (f.subject and "<mailbox>" in fix):
        found.append("the fix has a placeholder left in it")
    known = {f.subject or "", *ADDRESS.findall(json.dumps(ev)), *ADDRESS.findall(f.message)}
    strangers = [a for a in ADDRESS.findall(fix) if a.lower() not in {k.lower() for k in known}]
    if strangers:
        found.append(f"the fix names addresses the finding does not: {strangers}")
    return found


@pytest.mark.slow
def test_every_shipped_finding_gets_a_fix_its_evidence_does_not_contradict() -> None:
    results = shipped_results()
    findings = [(name, f) for name, t in results for f in t.findings if f.status in (Status.FAIL, Status.WARN)]
    assert len(findings) > 80 and {f.cause for _, f in findings} >= {"password-login-retired", "alias-address"}
    problems = [f"{name}: {f.check} {f.subject}: {p}" for name, f in findings for p in contradictions(f)]
    assert problems == []
    # the rules bite: the catalogue's plain texts would break them on the very findings the variants serve
    plain = [replace(f, remediation=CAT.get(f.cause).fix("google", f.subject)) for _, f in findings
             if f.cause in ("password-login-retired", "alias-address") and f.evidence.get("user.isEnrolledIn2Sv")
             is not False and f.subject]
    assert any(contradictions(f) for f in plain)
