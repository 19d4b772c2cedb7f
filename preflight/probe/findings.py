"""Turn what the probe saw into findings named by the cause catalogue. Pure: no I/O, no clock.

A server reply is mapped to a cause by `preflight.explain`, the same code a user reaches with
`preflight explain`; failures without a reply (refused, timed out, TLS) carry their cause from the
phase. Nothing unreadable becomes a pass or a fail: a dropped connection or a malformed reply is
`unknown`, and so is every phase the probe never reached.
"""

from __future__ import annotations

from typing import Any

from preflight.causes import Catalogue
from preflight.explain import explain
from preflight.model import Finding, Severity, Status
from preflight.probe.auth import TOKEN_MECHANISMS
from preflight.probe.result import Phase, PhaseResult, PhaseStatus, ProbeResult
from preflight.probe.rules import load_rules
from preflight.probe.target import TlsMode
from preflight.probe.wire import Reply

CHECKS: dict[Phase, tuple[str, str, Severity]] = {
    Phase.TOKEN: ("probe.token.issue", "SMTP token from the provider's sign-in", Severity.CRITICAL),
    Phase.CONNECT: ("probe.tcp", "TCP connection", Severity.CRITICAL),
    Phase.TLS: ("probe.tls", "TLS (implicit) and certificate", Severity.CRITICAL),
    Phase.BANNER: ("probe.banner", "Server greeting", Severity.CRITICAL),
    Phase.EHLO: ("probe.ehlo", "EHLO", Severity.HIGH),
    Phase.STARTTLS: ("probe.tls", "STARTTLS and certificate", Severity.CRITICAL),
    Phase.EHLO_TLS: ("probe.ehlo-tls", "EHLO after TLS", Severity.HIGH),
    Phase.AUTH: ("probe.auth", "Sign-in (AUTH)", Severity.CRITICAL),
    Phase.MAIL: ("probe.mail", "MAIL FROM", Severity.HIGH),
    Phase.RCPT: ("probe.rcpt", "RCPT TO", Severity.HIGH),
    Phase.DATA: ("probe.data", "DATA", Severity.HIGH),
    Phase.MESSAGE: ("probe.message", "Message after DATA", Severity.HIGH),
}


class _Builder:
    def __init__(self, result: ProbeResult, catalogue: Catalogue, subject: str | None,
                 mail_from: str | None = None, rcpt_to: tuple[str, ...] = ()) -> None:
        self.result = result
        self.catalogue = catalogue
        self.subject = subject
        self.mail_from = mail_from
        self.rcpt_to = rcpt_to
        self.provider = result.target.provider
        self.findings: list[Finding] = []

    def add(self, check: str, title: str, status: Status, severity: Severity, message: str,
            cause: str | None = None, evidence: dict[str, Any] | None = None, fix: str | None = None) -> None:
        remediation = fix
        if remediation is None and cause is not None and cause in self.catalogue:
            remediation = self.catalogue.get(cause).fix(self.provider, self.subject)
        if status is Status.PASS:
            severity = Severity.INFO
        self.findings.append(Finding(check, title, status, severity, cause, self.subject, message,
                                     evidence or {}, remediation))

    def reply_cause(self, replies: list[Reply]) -> tuple[str | None, list[dict[str, Any]]]:
        """The best catalogue match for the server's words, and the ranked alternatives as evidence."""
        text = "\n".join(r.text for r in replies)
        explanation = explain(text, self.catalogue, self.provider)
        ranked = [{"cause": m.cause, "confidence": m.confidence} for m in explanation.matches]
        return (explanation.matches[0].cause if explanation.matches else None), ranked

    def text_cause(self, text: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The same for an error text that is not an SMTP reply (a token endpoint's OAuth error)."""
        explanation = explain(text, self.catalogue, self.provider)
        ranked = [{"cause": m.cause, "confidence": m.confidence} for m in explanation.matches]
        return (explanation.matches[0].cause if explanation.matches else None), ranked


def _reply_words(reply: Reply | None) -> str:
    return " / ".join(reply.raw) if reply else "no reply"


def _evidence(p: PhaseResult) -> dict[str, Any]:
    ev: dict[str, Any] = {"phase": p.phase.value, "elapsed_ms": round(p.elapsed_ms, 1)}
    if p.replies:
        ev["replies"] = [r.raw for r in p.replies]
    if p.error:
        ev["error"] = p.error
    ev.update({k: v for k, v in p.detail.items() if k not in ("offered", "signed_in")})
    return ev


def _phase_finding(b: _Builder, p: PhaseResult) -> None:
    check, title, severity = CHECKS[p.phase]
    ev = _evidence(p)
    if p.status is PhaseStatus.UNKNOWN and p.phase is Phase.TOKEN:
        b.add(check, title, Status.UNKNOWN, severity,
              f"Could not ask {p.detail.get('provider')} for a token ({p.error}); whether the sending app's "
              "credentials and grants are accepted is unknown. Check the network path to the sign-in endpoint "
              "and probe again.", None, ev)
        return
    if p.status is PhaseStatus.UNKNOWN:
        b.add(check, title, Status.UNKNOWN, severity,
              f"{title}: no usable answer ({p.error}); run the probe again, and if it repeats, capture the "
              "transcript with --format json for the server's operator.", None, ev)
        return
    if p.status is PhaseStatus.OK:
        b.add(check, title, Status.PASS, severity, _pass_message(b.result, p), None, ev)
        return
    cause = p.cause
    if cause is None and p.replies:
        cause, ranked = b.reply_cause(p.replies)
        ev["explain"] = ranked
        cause = _xoauth2_cause(b, p, cause)
    elif cause is None and p.phase is Phase.TOKEN and p.error:
        cause, ranked = b.text_cause(p.error)
        ev["explain"] = ranked
    if p.error:
        message = f"{title} failed: {p.error.rstrip('.')}."
    else:
        message = _sender_refusal(b, p, cause) or f"{title} failed: the server replied {_reply_words(p.reply)!r}."
    if cause is None:
        message += " No cause in the catalogue matches this reply: the server's own words are the lead."
    b.add(check, title, Status.FAIL, severity, message, cause, ev)


_WHERE = {Phase.MAIL: "at MAIL FROM", Phase.RCPT: "at RCPT TO", Phase.DATA: "at DATA", Phase.MESSAGE: "after DATA"}


def _sender_refusal(b: _Builder, p: PhaseResult, cause: str | None) -> str | None:
    """A refusal of the sender reads as one wherever it arrives: at MAIL, RCPT or after DATA."""
    words = _reply_words(p.reply)
    sender = b.mail_from or "the sender"
    where = _WHERE.get(p.phase, f"at {CHECKS[p.phase][1]}")
    if cause == "send-as-denied":
        who = b.result.auth.user or "the signed-in account"
        return f"Send-as refused {where}: {who} may not send as {sender}; the server replied {words!r}."
    phrases = load_rules().sender["refusal_phrases"]
    if p.phase is Phase.RCPT and any(phrase in words.lower() for phrase in phrases):
        return f"RCPT TO refused because of the sender {sender}, not the recipient: the server replied {words!r}."
    return None


def _pass_message(result: ProbeResult, p: PhaseResult) -> str:
    reply = p.reply
    if p.phase is Phase.CONNECT:
        return f"Connected to {result.target.display} ({p.detail.get('address')}) in {p.elapsed_ms:.0f} ms."
    if p.phase in (Phase.TLS, Phase.STARTTLS) and result.tls is not None:
        tls = result.tls
        peer = f", certificate for {tls.verified_name!r} verified" if tls.peer else ""
        return f"TLS is up: {tls.version}, {tls.cipher}{peer}."
    if p.phase is Phase.TOKEN:
        return (f"{p.detail.get('provider')} issued an SMTP token to the sending app in {p.elapsed_ms:.0f} ms "
                "(the token is never shown; its claims are under probe.token).")
    if p.phase is Phase.AUTH:
        if not p.detail.get("signed_in"):
            return f"The server offers AUTH {p.detail.get('mechanism')}; no sign-in was attempted."
        return f"Signed in as {result.auth.user} with AUTH {p.detail.get('mechanism')}: {_reply_words(reply)!r}."
    if p.phase in (Phase.EHLO, Phase.EHLO_TLS) and reply is not None:
        keywords = [line.split(" ", 1)[0] for line in reply.lines[1:]]
        return f"{CHECKS[p.phase][1]} accepted; extensions: {', '.join(keywords) or 'none'}."
    if p.phase is Phase.RCPT:
        return f"The server accepted {p.detail.get('accepted')} recipient(s)."
    if p.phase is Phase.MESSAGE:
        return f"The server accepted the message: {_reply_words(reply)!r}."
    return f"{CHECKS[p.phase][1]}: {_reply_words(reply)!r}."


def _xoauth2_cause(b: _Builder, p: PhaseResult, cause: str | None) -> str | None:
    """A generic "wrong credentials" reply to a bearer token means the token or the app, never a password."""
    rules = load_rules().xoauth2
    bearer = p.phase is Phase.AUTH and p.detail.get("mechanism") in TOKEN_MECHANISMS
    if not bearer or cause != rules["generic_cause"]:
        return cause
    lint = b.result.token
    if lint is not None and any(not pr.unknown for pr in lint.problems):
        return str(rules["token_cause"])
    clean = rules["clean_token_cause"]
    return str(clean.get(b.provider or "", clean["generic"]))


def _starttls_offered(result: ProbeResult) -> bool:
    return any(c.upper().startswith("STARTTLS") for c in result.capabilities_before or [])


def _auth_fix(result: ProbeResult) -> str | None:
    """The fix for a missing AUTH that fits what the server does offer (None: the cause's own fix)."""
    texts = load_rules().auth
    if result.auth.offered:
        return texts["mechanism_missing"].format(offered=" ".join(result.auth.offered), needed=result.auth.needed)
    if result.tls is not None:
        return texts["none_inside_tls"]
    if not _starttls_offered(result):
        return texts["none_without_starttls"]
    return None  # a plain start where STARTTLS is offered: starttls-required says to start TLS first


def _starttls_fact(b: _Builder) -> None:
    """--tls none against a server without STARTTLS: a fact of its own, next to the AUTH one."""
    result = b.result
    ehlo = result.phase(Phase.EHLO)
    if result.target.tls is not TlsMode.NONE or ehlo is None or ehlo.status is not PhaseStatus.OK:
        return
    if not _starttls_offered(result):
        b.add("probe.tls.offered", "STARTTLS offered", Status.WARN, Severity.MEDIUM,
              "The server does not offer STARTTLS: nothing on this connection can be encrypted.", None,
              {"capabilities_before_tls": result.capabilities_before})


def _auth_offered(b: _Builder) -> None:
    """Which AUTH mechanisms the server lists after EHLO (inside TLS when there is TLS)."""
    result = b.result
    auth = result.phase(Phase.AUTH)
    offered = result.auth.offered
    where = "after STARTTLS" if result.capabilities_after is not None else "after EHLO"
    title = "AUTH mechanisms offered"
    ev = {"offered": offered, "needed": result.auth.needed,
          "capabilities_before_tls": result.capabilities_before, "capabilities_after_tls": result.capabilities_after}
    if auth is not None and auth.detail.get("offered") is False:
        if offered:
            message = f"The server does not offer AUTH {result.auth.needed} {where} (offered: {' '.join(offered)})."
        else:
            message = f"The server offers no AUTH {where}, so AUTH {result.auth.needed} cannot be used."
        fix = _auth_fix(result) if auth.cause == "auth-not-offered" else None
        b.add("probe.auth.offered", title, Status.FAIL, Severity.CRITICAL, message, auth.cause, ev, fix)
        return
    if auth is not None:
        b.add("probe.auth.offered", title, Status.PASS, Severity.INFO,
              f"The server offers AUTH {' '.join(offered)} {where}, including {result.auth.needed}.", None, ev)
        return
    # Mechanisms count only from the last EHLO the plan wanted: with STARTTLS, the one inside TLS.
    last = Phase.EHLO_TLS if Phase.EHLO_TLS in result.planned else Phase.EHLO
    final_ehlo = result.phase(last)
    if final_ehlo is None or final_ehlo.status is not PhaseStatus.OK:
        return
    starttls_offered = _starttls_offered(result)
    if offered:
        b.add("probe.auth.offered", title, Status.PASS, Severity.INFO,
              f"The server offers AUTH {' '.join(offered)} {where}.", None, ev)
    elif result.tls is None and starttls_offered:
        b.add("probe.auth.offered", title, Status.SKIPPED, Severity.INFO,
              "The server offers STARTTLS and, as it should, no AUTH before it; the probe stopped before TLS.",
              None, ev)
    else:
        b.add("probe.auth.offered", title, Status.WARN, Severity.MEDIUM,
              f"The server offers no AUTH {where}: only an IP-based relay could accept mail without signing in.",
              "auth-not-offered", ev, _auth_fix(result))


def _certificate(b: _Builder) -> None:
    tls = b.result.tls
    if tls is None or tls.peer is None:
        return
    days = tls.peer.days_left
    ev = {"certificate": tls.peer.to_dict()}
    title = "Server certificate expiry"
    if days < int(load_rules().tls["expiry_warning_days"]):
        b.add("probe.tls.expiry", title, Status.WARN, Severity.MEDIUM,
              f"The server certificate expires on {tls.peer.not_after} ({days} days left); clients will refuse it "
              "after that date.", "tls-certificate-invalid", ev)
    else:
        b.add("probe.tls.expiry", title, Status.PASS, Severity.INFO,
              f"The server certificate is valid until {tls.peer.not_after} ({days} days left).", None, ev)


def _token(b: _Builder) -> None:
    lint = b.result.token
    if lint is None:
        return
    title = "OAuth token claims"
    ev = lint.to_dict()
    warnings = [p.message for p in lint.problems if not p.unknown]
    unknowns = [p.message for p in lint.problems if p.unknown]
    if warnings:
        b.add("probe.token", title, Status.WARN, Severity.HIGH,
              "The token will most likely be refused: " + "; ".join(warnings) + " (claims read without "
              "verifying the signature).", "oauth-token-invalid", ev)
    elif lint.issuer_opaque:
        b.add("probe.token", title, Status.SKIPPED, Severity.INFO, " ".join(lint.notes), None, ev)
    elif unknowns:
        b.add("probe.token", title, Status.UNKNOWN, Severity.MEDIUM,
              "Could not lint the token: " + "; ".join(unknowns) + ". The AUTH reply is the verdict.", None, ev)
    else:
        b.add("probe.token", title, Status.PASS, Severity.INFO,
              "The token's audience, scope or role and expiry look right for SMTP"
              + (f"; {'; '.join(lint.notes)}" if lint.notes else "") + ".", None, ev)


def _no_token(b: _Builder) -> None:
    """--token-from gave no token: the sign-in the probe was asked for did not happen."""
    token = b.result.phase(Phase.TOKEN)
    if token is None or token.status is PhaseStatus.OK:
        return
    check, title, severity = CHECKS[Phase.AUTH]
    b.add(check, title, Status.UNKNOWN, severity,
          f"Not tested: no token from {token.detail.get('provider')} ({token.error}); fix the token first, "
          "then probe again.", None, {"stopped_at": Phase.TOKEN.value})


def _basic_retirement(b: _Builder) -> None:
    result = b.result
    auth = result.phase(Phase.AUTH)
    cause = result.target.basic_auth_warning
    if (auth is None or auth.status is not PhaseStatus.OK or not auth.detail.get("signed_in")
            or result.auth.method != "basic" or not cause or cause not in b.catalogue):
        return
    b.add("probe.auth.basic", "Password sign-in at risk", Status.WARN, Severity.MEDIUM,
          f"Password sign-in (AUTH {auth.detail.get('mechanism')}) works today. {b.catalogue.get(cause).title}: "
          "move the integration to OAuth (XOAUTH2).", cause, {"mechanism": auth.detail.get("mechanism")})


def _not_reached(b: _Builder) -> None:
    """Planned phases after the one that stopped the probe: unknown, naming where it stopped."""
    result = b.result
    # Where the conversation stopped: a refused token does not stop it, a network failure after it does.
    failure = next((p for p in result.phases if p.status is not PhaseStatus.OK and p.phase is not Phase.TOKEN),
                   result.first_failure)
    if failure is None:
        return
    done = {p.phase for p in result.phases}
    seen: set[str] = set()
    for phase in result.planned:
        if phase in done or phase not in CHECKS:
            continue
        check, title, severity = CHECKS[phase]
        if check in seen or any(f.check == check for f in b.findings):
            continue
        seen.add(check)
        deadline = failure.detail.get("deadline")
        why = (f"the probe's deadline of {deadline:g} s passed at {failure.phase.value}; probe again with a "
               "longer --deadline" if deadline else
               f"the probe stopped at {failure.phase.value}; fix that first, then probe again")
        b.add(check, title, Status.UNKNOWN, severity, f"Not tested: {why}.", None,
              {"stopped_at": failure.phase.value})


def _send_as_untested(b: _Builder) -> None:
    """MAIL FROM alone proves no send-as right: servers refuse a sender at RCPT (Postfix) or after DATA."""
    mail = b.result.phase(Phase.MAIL)
    if b.mail_from is None or b.rcpt_to or mail is None or mail.status is not PhaseStatus.OK:
        return
    b.add("probe.send-as", "Send-as", Status.SKIPPED, Severity.INFO,
          f"MAIL FROM <{b.mail_from}> was accepted, which does not prove the account may send as it: Postfix "
          "refuses such a sender at RCPT TO, Exchange Online after DATA. A send-as test needs a recipient: add "
          "--rcpt-to ADDRESS (nothing is delivered without --send).", None, {"mail_from": b.mail_from})


def build_findings(result: ProbeResult, catalogue: Catalogue, subject: str | None = None,
                   mail_from: str | None = None, rcpt_to: tuple[str, ...] = ()) -> list[Finding]:
    """Findings in the order a sign-in meets them: network, TLS, greeting, AUTH, envelope."""
    b = _Builder(result, catalogue, subject, mail_from, rcpt_to)
    auth_noted = False
    for p in result.phases:
        if p.phase is Phase.AUTH:
            _auth_offered(b)
            _starttls_fact(b)
            _token(b)
            auth_noted = True
            if p.detail.get("offered") is False:
                continue  # reported once, as probe.auth.offered
            if not p.detail.get("signed_in") and p.status is PhaseStatus.OK:
                _no_token(b)
                continue  # only the mechanism was checked
        _phase_finding(b, p)
        if p.phase in (Phase.TLS, Phase.STARTTLS) and p.status is PhaseStatus.OK:
            _certificate(b)
    if not auth_noted:
        _auth_offered(b)
        _starttls_fact(b)
        _token(b)
    _basic_retirement(b)
    _send_as_untested(b)
    _not_reached(b)
    return b.findings
