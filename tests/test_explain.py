"""explain: the real-world corpus, reply parsing per library wrapper, XOAUTH2 decoding, bounds."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from preflight.causes import Catalogue, load_catalogue
from preflight.explain import MAX_TEXT, Reply, explain, parse_reply

CORPUS = json.loads((Path(__file__).parent / "data" / "explain_corpus.json").read_text(encoding="utf-8"))
GMAIL_CHALLENGE = "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# --- corpus -----------------------------------------------------------------------------------


def test_corpus_is_well_formed(catalogue: Catalogue) -> None:
    assert len(CORPUS) >= 70
    assert len({e["text"] for e in CORPUS}) == len(CORPUS)
    for entry in CORPUS:
        assert entry["text"].strip() and entry["source"].strip()
        assert entry["cause"] is None or entry["cause"] in catalogue, entry["cause"]


def test_corpus_top1_accuracy(catalogue: Catalogue) -> None:
    hits, misses = 0, []
    for entry in CORPUS:
        matches = explain(entry["text"], catalogue).matches
        top = matches[0].cause if matches else None
        if top == entry["cause"]:
            hits += 1
        else:
            misses.append((entry["cause"], top, entry["text"][:100]))
    accuracy = hits / len(CORPUS)
    print(f"\nexplain corpus: top-1 accuracy {hits}/{len(CORPUS)} = {accuracy:.3f}")
    print("per cause:", dict(sorted(Counter(str(e["cause"]) for e in CORPUS).items())))
    for miss in misses:
        print("  miss:", miss)
    assert accuracy >= 0.95


def test_corpus_texts_without_a_cause_give_no_match(catalogue: Catalogue) -> None:
    nulls = [e for e in CORPUS if e["cause"] is None]
    assert len(nulls) >= 3
    for entry in nulls:
        assert explain(entry["text"], catalogue).matches == [], entry["text"]


# --- parse_reply: wrappers and multi-line replies ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "enhanced", "reply_text"),
    [
        pytest.param(
            "smtplib.SMTPAuthenticationError: (535, b'5.7.8 Username and Password not accepted. Learn more at\\n"
            "5.7.8  https://support.google.com/mail/?p=BadCredentials j10sm5731558pfn.207 - gsmtp')",
            535,
            "5.7.8",
            "Username and Password not accepted. Learn more at "
            "https://support.google.com/mail/?p=BadCredentials j10sm5731558pfn.207 - gsmtp",
            id="smtplib-tuple-escaped-newline",
        ),
        pytest.param(
            "smtplib.SMTPAuthenticationError: (535, b'5.7.139 Authentication unsuccessful, the user credentials "
            "were incorrect. [PH0PR07CA0004.namprd07.prod.outlook.com]')",
            535,
            "5.7.139",
            "Authentication unsuccessful, the user credentials were incorrect. "
            "[PH0PR07CA0004.namprd07.prod.outlook.com]",
            id="smtplib-tuple-microsoft",
        ),
        pytest.param(
            "Error: Invalid login: 535-5.7.8 Username and Password not accepted. Learn more at\n"
            "535 5.7.8  https://support.google.com/mail/?p=BadCredentials g67sm1422389pfb.9 - gsmtp\n"
            "    at SMTPConnection._formatError (/app/node_modules/nodemailer/lib/smtp-connection/index.js:774:19)",
            535,
            "5.7.8",
            "Username and Password not accepted. Learn more at "
            "https://support.google.com/mail/?p=BadCredentials g67sm1422389pfb.9 - gsmtp",
            id="nodemailer-multiline",
        ),
        pytest.param(
            "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1>\n"
            "534-5.7.14 Please log in via your web browser and\n534-5.7.14 then try again.\n"
            "534-5.7.14  Learn more at\n534 5.7.14  https://support.google.com/mail/answer/78754 x1sm2.39 - gsmtp",
            534,
            "5.7.14",
            "<https://accounts.google.com/signin/continue?sarp=1> Please log in via your web browser and then "
            "try again. Learn more at https://support.google.com/mail/answer/78754 x1sm2.39 - gsmtp",
            id="wire-continuation-lines",
        ),
        pytest.param(
            "2021-04-26 14:37:53 SMTP ERROR: Password command failed: 535-5.7.8 Username and Password not "
            "accepted. Learn more at 535 5.7.8 https://support.google.com/mail/?p=BadCredentials y10sm1.105 - gsmtp\n"
            "2021-04-26 14:37:53 SMTP Error: Could not authenticate.",
            535,
            "5.7.8",
            "Username and Password not accepted. Learn more at "
            "https://support.google.com/mail/?p=BadCredentials y10sm1.105 - gsmtp",
            id="phpmailer-inline-continuation",
        ),
        pytest.param(
            'Failed to authenticate on SMTP server with username "a@b.c" using the following authenticators: '
            '"LOGIN", "PLAIN". Authenticator "LOGIN" returned "Expected response code "235" but got code "535", '
            'with message "535 5.7.3 Authentication unsuccessful [LO2P265CA0061.GBRP265.PROD.OUTLOOK.COM]".".',
            535,
            "5.7.3",
            "Authentication unsuccessful [LO2P265CA0061.GBRP265.PROD.OUTLOOK.COM]",
            id="symfony-mailer",
        ),
        pytest.param(
            "javax.mail.AuthenticationFailedException: 535 5.7.139 Authentication unsuccessful, basic "
            "authentication is disabled. [BM1P287CA0015.INDP287.PROD.OUTLOOK.COM]\n\n"
            "\tat com.sun.mail.smtp.SMTPTransport$Authenticator.authenticate(SMTPTransport.java:965)",
            535,
            "5.7.139",
            "Authentication unsuccessful, basic authentication is disabled. [BM1P287CA0015.INDP287.PROD.OUTLOOK.COM]",
            id="javamail",
        ),
        pytest.param(
            "System.Net.Mail.SmtpException: The SMTP server requires a secure connection or the client was not "
            "authenticated. The server response was: 5.7.57 Client not authenticated to send mail. Error: 535 "
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
            535,
            "5.7.139",
            "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant",
            id="dotnet-smtpclient",
        ),
        pytest.param(
            "MailKit.Security.AuthenticationException: 535: 5.7.3 Authentication unsuccessful "
            "[VI1PR0902CA0036.eurprd09.prod.outlook.com 2024-03-20T10:27:56.998Z 08DC48BEE95C08E5]",
            535,
            "5.7.3",
            "Authentication unsuccessful [VI1PR0902CA0036.eurprd09.prod.outlook.com 2024-03-20T10:27:56.998Z "
            "08DC48BEE95C08E5]",
            id="mailkit-colon",
        ),
        pytest.param(
            "MailKit.Security.AuthenticationException: AuthenticationInvalidCredentials: 5.7.3 Authentication "
            "unsuccessful [BN3PR03CA0067.namprd03.prod.outlook.com]",
            None,
            "5.7.3",
            "Authentication unsuccessful [BN3PR03CA0067.namprd03.prod.outlook.com]",
            id="enhanced-code-only",
        ),
        pytest.param(
            "2023/09/09 07:28:56 error sending message: subscriber 31: 421 Service not available, closing "
            "transmission channel.",
            421,
            None,
            "Service not available, closing transmission channel",
            id="basic-code-only",
        ),
        pytest.param(
            '"Error: Invalid login: 534-5.7.14 <https://accounts.google.com/x↵534-5.7.14 y> Please log in via '
            "your web browser and↵534-5.7.14 then try again.↵534 5.7.14 https://support.google.com/mail/answer/78754"
            ' k76sm6774626pfg.42 - gsmtp"',
            534,
            "5.7.14",
            "<https://accounts.google.com/x y> Please log in via your web browser and then try again. "
            "https://support.google.com/mail/answer/78754 k76sm6774626pfg.42 - gsmtp",
            id="return-symbol-line-breaks",
        ),
    ],
)
def test_parse_reply_unwraps_library_forms(text: str, code: int | None, enhanced: str, reply_text: str) -> None:
    assert parse_reply(text) == Reply(code, enhanced, reply_text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "Error: connect ECONNREFUSED 127.0.0.1:587\n  errno: -111,\n  port: 587,",
        "Client error: `POST https://login.microsoftonline.com/common/oauth2/v2.0/token` resulted in a "
        "`401 Unauthorized` response",
        'Swift_TransportException: Expected response code 250 but got code "", with message ""',
        "\x00\x01\x02 garbage ÿþ 🙂 " * 50,
    ],
)
def test_parse_reply_returns_none_without_an_smtp_reply(text: str) -> None:
    assert parse_reply(text) is None


def test_parse_reply_keeps_the_first_of_two_replies() -> None:
    text = (
        "530 5.7.57 Client not authenticated to send mail. [x.prod.outlook.com]\n"
        "451 4.7.0 Temporary server error. Please try again later. PRX4 [x.prod.outlook.com]"
    )
    reply = parse_reply(text)
    assert reply is not None and (reply.code, reply.enhanced) == (530, "5.7.57")


def test_parse_reply_does_not_merge_a_following_final_reply() -> None:
    reply = parse_reply("535 5.7.8 first final reply\n535 5.7.8 second final reply")
    assert reply == Reply(535, "5.7.8", "first final reply")


# --- XOAUTH2 challenge -----------------------------------------------------------------------


def test_gmail_xoauth2_challenge_is_decoded(catalogue: Catalogue) -> None:
    result = explain(GMAIL_CHALLENGE, catalogue)
    assert result.notes == [
        'decoded Gmail XOAUTH2 challenge: {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
    ]
    assert [m.cause for m in result.matches] == ["oauth-token-invalid"]
    assert result.matches[0].remediation == catalogue.get("oauth-token-invalid").fix("google")
    assert result.reply is not None and result.reply.code == 334


def test_rfc7628_401_challenge_is_decoded(catalogue: Catalogue) -> None:
    payload = '{"status":"401","schemes":"bearer mac","scope":"https://mail.google.com/"}'
    encoded = base64.b64encode(payload.encode()).decode()
    result = explain(f"S: 334 {encoded}\nC: \nS: 535 5.7.8 authentication failed", catalogue)
    assert result.notes and '"status":"401"' in result.notes[0]
    assert result.matches[0].cause == "oauth-token-invalid"


def test_non_json_challenges_are_ignored(catalogue: Catalogue) -> None:
    # AUTH LOGIN's "Username:" / "Password:" prompts and a scrambled challenge decode to no JSON.
    result = explain("334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n334 eyJzhwicdGF0dXMiOiI0MDAi", catalogue)
    assert result.notes == [] and result.matches == []


def test_password_rejection_before_an_xoauth2_fallback_ranks_first(catalogue: Catalogue) -> None:
    # Symfony tries LOGIN, PLAIN, then XOAUTH2 with the password: the first rejection is the cause.
    text = (
        'Authenticator "LOGIN" returned "Expected response code "235" but got code "535", with message '
        '"535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  '
        'https://support.google.com/mail/?p=BadCredentials x.22 - gsmtp". Authenticator "XOAUTH2" returned '
        f'"Expected response code "235" but got code "334", with message "{GMAIL_CHALLENGE}".'
    )
    causes = [m.cause for m in explain(text, catalogue).matches]
    assert causes[0] == "wrong-credentials" and "oauth-token-invalid" in causes


# --- matches: ranking, providers, remediation --------------------------------------------------


def test_matches_are_ranked_and_unique(catalogue: Catalogue) -> None:
    for entry in CORPUS:
        matches = explain(entry["text"], catalogue).matches
        causes = [m.cause for m in matches]
        assert len(causes) == len(set(causes))
        assert [m.confidence for m in matches] == sorted((m.confidence for m in matches), reverse=True)
        assert all(0 < m.confidence <= 1 for m in matches)


def test_ambiguous_reply_lists_the_alternatives(catalogue: Catalogue) -> None:
    text = (
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated "
        "successfully. Contact your administrator. [MN2PR07CA0004.namprd07.prod.outlook.com]"
    )
    causes = [m.cause for m in explain(text, catalogue).matches]
    assert causes[:3] == ["ca-legacy-auth-block", "ca-location-block", "mfa-required"]


def test_remediation_follows_the_inferred_provider(catalogue: Catalogue) -> None:
    google = explain("535-5.7.8 Username and Password not accepted. x1sm2 - gsmtp", catalogue).matches[0]
    assert google.cause == "wrong-credentials"
    assert google.remediation == catalogue.get("wrong-credentials").fix("google")
    microsoft = explain("AADSTS50126: Error validating credentials", catalogue).matches[0]
    assert microsoft.remediation == catalogue.get("wrong-credentials").fix("microsoft")
    plain = explain("ConnectionRefusedError: [Errno 111] Connection refused", catalogue).matches[0]
    assert plain.remediation == catalogue.get("connection-refused").fix(None)


def test_explicit_provider_wins_over_inference(catalogue: Catalogue) -> None:
    match = explain("535 5.7.8 Username and Password not accepted", catalogue, provider="microsoft").matches[0]
    assert match.remediation == catalogue.get("wrong-credentials").fix("microsoft")


def test_noise_does_not_hide_the_phrase(catalogue: Catalogue) -> None:
    # The server host bracket and timestamp sit in the middle of what the pattern needs.
    text = (
        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults "
        "policy. Contact your administrator. [BN9PR03CA0716.namprd03.prod.outlook.com 2024-05-01T10:00:00Z 08DC]"
    )
    assert explain(text, catalogue).matches[0].cause == "security-defaults"


@pytest.mark.parametrize("text", ["", "   ", "hello world", "250 2.0.0 OK 1700000000 x1sm2.3 - gsmtp", "{}"])
def test_nothing_matches_gives_an_empty_list(catalogue: Catalogue, text: str) -> None:
    assert explain(text, catalogue).matches == []


def test_to_dict_shape(catalogue: Catalogue) -> None:
    data = explain("530 5.7.0 Must issue a STARTTLS command first. x1sm2.3 - gsmtp", catalogue).to_dict()
    assert set(data) == {"input", "reply", "matches", "notes"}
    assert data["reply"] == {
        "code": 530,
        "enhanced": "5.7.0",
        "text": "Must issue a STARTTLS command first. x1sm2.3 - gsmtp",
    }
    assert data["matches"][0]["cause"] == "starttls-required"
    assert set(data["matches"][0]) == {"cause", "confidence", "title", "remediation"}
    assert json.loads(json.dumps(data)) == data
    assert explain("nothing here", catalogue).to_dict()["reply"] is None


# --- bounds ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_huge_input_is_truncated_and_fast(catalogue: Catalogue) -> None:
    text = "535-5.7.8 Username and Password not accepted. " + "x" * (2 * 1024 * 1024)
    start = time.process_time()
    result = explain(text, catalogue)
    assert time.process_time() - start < 2.0
    assert result.matches[0].cause == "wrong-credentials"
    assert len(result.input) == MAX_TEXT
    assert any("first" in note for note in result.notes)


@pytest.mark.slow
@pytest.mark.parametrize(
    "unit",
    [
        "535 ",
        "5.7.8 ",
        "535-5.7.8 ",
        "a",
        "auth xoauth2 ",
        "334 eyJ",
        "[x.prod.outlook.com ",
        "aadsts5 ",
        "\\n",
        "- gsmtp ",
    ],
)
def test_no_pattern_backtracks_catastrophically(catalogue: Catalogue, unit: str) -> None:
    text = (unit * (MAX_TEXT // len(unit) + 1))[:MAX_TEXT]
    start = time.process_time()
    explain(text, catalogue)
    parse_reply(text)
    assert time.process_time() - start < 3.0, unit


# --- issue 18: texts that were missed or misnamed --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; Failed to process message",
         "outbound-spam-restricted"),
        ("550 5.7.501 Access denied, spam abuse detected.", "outbound-spam-restricted"),
        ("535 5.7.139 Authentication unsuccessful, the user account is locked.", "account-locked"),
        ("421-4.7.0 Try again later, closing connection. (EHLO) x1sm2.3 - gsmtp", "helo-rejected"),
        ("AADSTS500011: The resource principal named https://outlook.office365.com was not found in the tenant",
         "oauth-scope-invalid"),
        ("smtplib.SMTPServerDisconnected: Connection unexpectedly closed", "tls-mode-mismatch"),
        ("AADSTS700016: Application with identifier 'abc' was not found in the directory 'x'.", "oauth-app-not-found"),
        ("AADSTS700027: Client assertion contains an invalid signature.", "oauth-client-credential-invalid"),
        ("AADSTS7000215: Invalid client secret provided.", "oauth-client-credential-invalid"),
        ("AADSTS7000222: The provided client secret keys for app 'x' are expired.", "oauth-client-credential-invalid"),
        ("ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", "tls-mode-mismatch"),
        ("553 5.7.1 <x@lab.test>: Sender address rejected: not owned by user sender@lab.test", "send-as-denied"),
        ("553 5.7.1 <x@lab.test>: Sender address rejected: not logged in", "auth-required"),
        ("554 5.7.1 <y@example.org>: Recipient address rejected: Access denied", "auth-required"),
        ("550 Unrouteable address", "recipient-not-found"),
        ("554 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: policy", "message-rejected"),
        ("554 5.7.1 <DATA>: Data command rejected: Multi-recipient bounce", "message-rejected"),
        ("AADSTS50055: The password is expired.", "password-expired"),
        ("AADSTS53000: Device is not in required device state: compliant.", "ca-device-required"),
        ("AADSTS50011: The redirect URI 'http://localhost' specified in the request does not match the redirect "
         "URIs configured for the application", "entra-app-misconfigured"),
        ("Error 403: org_internal This client is restricted to users within its organization.", "oauth-consent-screen"),
        ("550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy.",
         "spf-dmarc-failure"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", "ip-blocklisted"),
        ("450 4.1.8 <www-data@host.internal>: Sender address rejected: Domain not found", "sender-domain-unroutable"),
        ("AADSTS70011: The provided value for the input parameter 'scope' is not valid.", "oauth-scope-invalid"),
    ],
)
def test_issue18_texts_name_their_cause(catalogue: Catalogue, text: str, cause: str) -> None:
    matches = explain(text, catalogue).matches
    assert matches and matches[0].cause == cause, [m.cause for m in matches]


@pytest.mark.parametrize(
    "text",
    [
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table",
        "550-5.1.1 The email account that you tried to reach does not exist. x1sm2.3 - gsmtp",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    ],
)
def test_recipient_bounces_are_not_the_senders_mailbox(catalogue: Catalogue, text: str) -> None:
    causes = [m.cause for m in explain(text, catalogue).matches]
    assert causes[0] == "recipient-not-found" and "mailbox-not-found" not in causes


def test_a_security_defaults_lock_is_not_an_account_lockout(catalogue: Catalogue) -> None:
    text = "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy."
    assert explain(text, catalogue).matches[0].cause == "security-defaults"


ISSUE18_CAUSES = """
recipient-not-found sender-domain-unroutable account-locked password-expired oauth-app-not-found
oauth-client-credential-invalid outbound-spam-restricted helo-rejected ip-blocklisted spf-dmarc-failure
oauth-consent-screen entra-app-misconfigured ca-device-required oauth-scope-invalid tls-mode-mismatch message-rejected
""".split()


@pytest.mark.parametrize("cause_id", ISSUE18_CAUSES)
def test_new_causes_are_complete_and_have_real_texts(catalogue: Catalogue, cause_id: str) -> None:
    cause = catalogue.get(cause_id)
    assert cause.title and cause.explanation and cause.docs and cause.patterns
    assert "generic" in cause.remediation or {"microsoft", "google"} <= set(cause.remediation)
    sources = {e["source"] for e in CORPUS if e["cause"] == cause_id}
    assert sources and all(s.startswith("https://") for s in sources)


@pytest.mark.slow
def test_folded_patterns_match_like_ignorecase(catalogue: Catalogue) -> None:
    # explain matches lower-cased text with lower-cased patterns (faster); it must find what IGNORECASE finds.
    from preflight.explain import _folded, _match_text, _unwrap

    texts = [e["text"] for e in CORPUS] + ["SMTPServerDisconnected \\S WRONG_VERSION_NUMBER AADSTS50053 ÄÖÜ İstanbul"]
    for text in texts:
        subject = _match_text(_unwrap(text), catalogue.providers)
        for cause in catalogue.causes:
            for pattern in cause.patterns:
                expected = pattern.regex.search(subject) is not None
                assert (_folded(pattern.regex.pattern).search(subject.lower()) is not None) == expected, (
                    cause.id, pattern.regex.pattern, text[:80])
