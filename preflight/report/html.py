"""One self-contained HTML file a consultant can hand to a customer: no script, font, image or stylesheet
from anywhere, every value escaped, readable on screen and on paper."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from preflight.model import MailboxVerdict, Report, Status, TargetResult
from preflight.report.common import (
    VERDICT_ORDER,
    Entry,
    Labels,
    clean,
    evidence_pairs,
    fix_label,
    fix_text,
    grouped,
    merged,
    method_label,
    methods,
    one_line,
    status_label,
    subjects,
    verdict_counts,
    when,
)

PROVIDER = {"microsoft": "Microsoft 365", "google": "Google Workspace"}
METHOD = {"basic": "Basic (password)", "oauth-delegated": "OAuth, delegated", "oauth-app": "OAuth, app-only"}
VERDICT = {"ready": "Ready", "blocked": "Blocked", "at-risk": "At risk", "incomplete": "Incomplete"}
STATUS = {"fail": "Fail", "unknown": "Unknown", "warn": "Warning", "pass": "Pass", "skipped": "N/A",
          "accepted": "Accepted"}
# The chip text carries the meaning; the mark and the colour only repeat it.
MARK = {"ready": "✓", "pass": "✓", "blocked": "✕", "fail": "✕", "at-risk": "!", "warn": "!",
        "incomplete": "?", "unknown": "?", "skipped": "–", "accepted": "✓"}

CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--brand:#1e3a5f;
--red:#9b1c1c;--red-bg:#fdecec;--amber:#8a4b08;--amber-bg:#fef3c7;--violet:#5b21b6;--violet-bg:#efe9fb;
--green:#03543f;--green-bg:#def7ec;--grey:#4b5563;--grey-bg:#f1f2f4;--blue:#1e429f;--blue-bg:#e1effe}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.92em}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header.top{background:var(--brand);color:#fff;padding:28px 0 24px}
header.top .kicker{text-transform:uppercase;letter-spacing:.12em;font-size:12px;opacity:.8;margin:0}
header.top h1{margin:4px 0 6px;font-size:28px;font-weight:650}
header.top p.lede{margin:0;max-width:760px;opacity:.9}
dl.meta{display:flex;flex-wrap:wrap;gap:4px 28px;margin:16px 0 0;font-size:13px}
dl.meta div{display:flex;gap:6px}dl.meta dt{opacity:.75}dl.meta dd{margin:0;font-weight:600}
.tiles{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:12px;margin:-18px 0 8px}
.tile{background:var(--card);border:1px solid var(--line);border-top:4px solid var(--c);border-radius:8px;
padding:12px 16px}
.tile .n{font-size:28px;font-weight:700;color:var(--c);line-height:1.1}.tile .l{color:var(--muted);font-size:13px}
p.counts{color:var(--muted);margin:10px 0 0}
section.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:20px 24px;margin:20px 0}
h2{font-size:21px;margin:0}h3{font-size:15px;margin:22px 0 8px;text-transform:uppercase;letter-spacing:.06em;
color:var(--muted)}h4{font-size:15px;margin:18px 0 8px}
p.tmeta{margin:2px 0 0;color:var(--muted)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid var(--line)}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600}
tbody th{font-weight:600;overflow-wrap:anywhere}
ol.why{margin:3px 0 0;padding-left:18px}
td .why{display:block;font-size:12.5px;color:var(--muted);margin-top:3px}
.chip{display:inline-block;white-space:nowrap;border:1px solid currentColor;border-radius:999px;padding:0 9px;
font-size:12px;font-weight:650;line-height:20px;color:var(--c);background:var(--cb)}
.s-fail,.s-blocked{--c:var(--red);--cb:var(--red-bg)}.s-warn,.s-at-risk{--c:var(--amber);--cb:var(--amber-bg)}
.s-unknown,.s-incomplete{--c:var(--violet);--cb:var(--violet-bg)}.s-pass,.s-ready{--c:var(--green);
--cb:var(--green-bg)}.s-skipped{--c:var(--grey);--cb:var(--grey-bg)}.s-accepted{--c:var(--blue);--cb:var(--blue-bg)}
.alert{border:1px solid var(--red);background:var(--red-bg);color:var(--red);border-radius:6px;padding:10px 14px;
margin:14px 0}
article.f{border:1px solid var(--line);border-left:4px solid var(--c);border-radius:6px;padding:12px 16px;margin:10px 0;
break-inside:avoid}
article.f header{display:flex;flex-wrap:wrap;align-items:center;gap:6px 10px}
article.f h5{font-size:15px;margin:0}
.tags{color:var(--muted);font-size:12.5px}
article.f p{margin:8px 0}
dl.ev{display:grid;grid-template-columns:minmax(120px,max-content) 1fr;gap:2px 14px;margin:8px 0;font-size:12.5px}
dl.ev dt{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
dl.ev dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-word}
.fix{background:#f8fafc;border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin-top:8px;
white-space:pre-line}
.fix b{display:block;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.note{font-size:13px;color:var(--blue)}
.docs{font-size:12.5px;margin:6px 0 0}.docs a{color:var(--brand)}
details.rest summary{cursor:pointer;font-weight:600;margin:18px 0 8px}
details.rest td{font-size:13px}
footer{color:var(--muted);font-size:12.5px;padding:8px 0 32px}
a{color:var(--brand)}
@media (max-width:720px){.tiles{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media print{
@page{margin:14mm}
body{background:#fff;font-size:10.5pt}
.wrap{max-width:none;padding:0}
header.top{background:#fff;color:var(--ink);border-bottom:2px solid var(--ink);padding:0 0 12px}
.tiles{margin:12px 0}
section.card{border:0;padding:0;margin:0 0 12px}
section.target{break-before:page}
.chip,.tile,article.f,.alert{-webkit-print-color-adjust:exact;print-color-adjust:exact}
tr,.tile{break-inside:avoid}h2,h3,h4{break-after:avoid}
details.rest summary{list-style:none}details.rest summary::-webkit-details-marker{display:none}
}
"""


def e(value: object) -> str:
    return escape(clean(value), quote=True)


def chip(kind: str, label: str) -> str:
    return f'<span class="chip s-{kind}">{MARK[kind]} {e(label)}</span>'


def render(report: Report) -> str:
    labels = Labels.load()
    day = one_line(report.generated_at)[:10]
    only = report.targets[0].name if len(report.targets) == 1 else ""
    title = " · ".join(p for p in ("SMTP readiness report", only, day) if p)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light">',
        f'<meta name="generator" content="preflight {e(report.tool_version)}">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        _header(report),
        '<main class="wrap">',
        _summary(report),
    ]
    if len(report.targets) > 1:
        parts.append(_overview(report))
    parts += [_target(i, t, labels) for i, t in enumerate(report.targets, 1)]
    if not report.targets:
        parts.append('<section class="card"><p>No targets were evaluated.</p></section>')
    parts += [
        "</main>",
        '<footer class="wrap">Produced by preflight, a read-only check: it reads tenant settings and changes '
        "nothing. Verdicts hold for the settings as read at the time above. “Unknown” means a setting "
        "could not be read; grant what the finding names and run it again.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(report: Report) -> str:
    meta = [("Generated", when(report.generated_at)), ("Tool", f"preflight {report.tool_version}"),
            ("Targets", str(len(report.targets)))]
    items = "".join(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in meta)
    return (
        '<header class="top"><div class="wrap"><p class="kicker">preflight</p><h1>SMTP readiness report</h1>'
        '<p class="lede">Whether a third-party service will be able to send mail through each mailbox over SMTP, '
        "per sign-in method, what blocks it and how to fix it.</p>"
        f'<dl class="meta">{items}</dl></div></header>'
    )


def _summary(report: Report) -> str:
    colour = {"blocked": "var(--red)", "incomplete": "var(--violet)", "at-risk": "var(--amber)",
              "ready": "var(--green)"}
    counts = verdict_counts(report.targets)
    tiles = "".join(
        f'<div class="tile" style="--c:{colour[v.value]}"><div class="n">{counts[v.value]}</div>'
        f'<div class="l">{VERDICT[v.value]}</div></div>'
        for v in VERDICT_ORDER
    )
    status = report.summary()
    accepted = sum(1 for t in report.targets for f in t.findings if f.accepted)
    chips = " ".join(chip(k, f"{n} {STATUS[k]}") for k, n in status.items() if n)
    if accepted:
        chips += " " + chip("accepted", f"{accepted} accepted as exceptions")
    return (
        f'<div class="tiles" role="group" aria-label="Verdicts per mailbox and sign-in method">{tiles}</div>'
        f'<p class="counts">Verdicts count each mailbox once per sign-in method. Findings: {chips or "none"}</p>'
    )


def _overview(report: Report) -> str:
    rows = []
    for i, t in enumerate(report.targets, 1):
        counts = verdict_counts([t])
        if t.errors:
            cells = f'<td colspan="4">{chip("unknown", "Not evaluated")}</td>'
        else:
            cells = "".join(f"<td>{counts[v.value]}</td>" for v in VERDICT_ORDER)
        rows.append(
            f'<tr><th scope="row"><a href="#target-{i}">{e(t.name)}</a></th>'
            f"<td>{e(PROVIDER.get(t.provider, t.provider))}</td><td>{e(t.tenant)}</td>{cells}</tr>"
        )
    head = "".join(f"<th>{VERDICT[v.value]}</th>" for v in VERDICT_ORDER)
    return (
        '<section class="card"><h2>Targets</h2><table><thead><tr><th>Target</th><th>Provider</th>'
        f"<th>Tenant</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _target(index: int, t: TargetResult, labels: Labels) -> str:
    parts = [
        f'<section class="card target" id="target-{index}">',
        f"<h2>{e(t.name)}</h2>",
        f'<p class="tmeta">{e(PROVIDER.get(t.provider, t.provider))} · {e(t.tenant)}</p>',
    ]
    parts += [f'<div class="alert" role="alert"><strong>Not evaluated:</strong> {e(err)}</div>' for err in t.errors]
    if t.mailboxes:
        parts.append(_matrix(t, labels))
    groups = grouped(t)
    if groups:
        parts.append("<h3>Findings to act on</h3>")
    for subject, findings in groups:
        parts.append(f"<h4>{e(subject) if subject else 'Tenant-wide'}</h4>")
        parts += [_finding(entry, t.provider, labels) for entry in findings]
    parts.append(_rest(t))
    parts.append("</section>")
    return "\n".join(parts)


def _matrix(t: TargetResult, labels: Labels) -> str:
    cols = methods(t)
    by_key: dict[tuple[str, str], MailboxVerdict] = {(mv.address, mv.method.value): mv for mv in t.mailboxes}
    head = "".join(f"<th>{e(METHOD.get(m.value, m.value))}</th>" for m in cols)
    rows = []
    for address in subjects(t):
        cells = []
        for m in cols:
            mv = by_key.get((address, m.value))
            if mv is None:
                cells.append('<td><span class="why">not evaluated</span></td>')
                continue
            if len(mv.blocking) > 1:
                # Every blocking layer, in the order a sign-in meets them: the customer fixes them all.
                items = "".join(f"<li>{e(labels.cause(c, t))}</li>" for c in mv.blocking)
                why = f'<ol class="why">{items}</ol>'
            else:
                note = labels.note(t, mv)
                why = f'<span class="why">{e(note)}</span>' if note else ""
            cells.append(f"<td>{chip(mv.verdict.value, VERDICT[mv.verdict.value])}{why}</td>")
        rows.append(f'<tr><th scope="row">{e(address)}</th>{"".join(cells)}</tr>')
    return (
        "<h3>Verdict per mailbox and sign-in method</h3>"
        f"<table class=\"matrix\"><thead><tr><th>Mailbox</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _finding(entry: Entry, provider: str, labels: Labels) -> str:
    f = entry.finding
    label = status_label(f)
    tags = [e(f"{f.severity.value} severity"), e(method_label(entry)), f"<code>{e(f.check)}</code>"]
    if f.cause:
        tags.append(f"cause: {e(labels.cause(f.cause))}")
    parts = [
        f'<article class="f s-{label}"><header>{chip(label, STATUS[label])}<h5>{e(f.title)}</h5>'
        f'<span class="tags">{" · ".join(tags)}</span></header>',
        f"<p>{e(f.message)}</p>",
    ]
    if f.accepted:
        parts.append(f'<p class="note"><strong>Accepted exception:</strong> {e(f.accepted)}</p>')
    pairs = evidence_pairs(f.evidence)
    if pairs:
        parts.append('<dl class="ev">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in pairs) + "</dl>")
    fix = fix_text(f)
    if fix:
        parts.append(f'<div class="fix"><b>{fix_label(f)}</b>{e(fix)}</div>')
    docs = labels.docs(f.cause, provider) if f.status is not Status.UNKNOWN else []
    if docs:
        links = " · ".join(f'<a href="{e(u)}">{e(_short(u))}</a>' for u in docs)
        parts.append(f'<p class="docs">Learn more: {links}</p>')
    parts.append("</article>")
    return "\n".join(parts)


def _short(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or "") + parts.path


def _rest(t: TargetResult) -> str:
    """Passed and not-applicable checks: the record of what was verified. Open, so it also prints."""
    rest = merged(f for f in t.findings if f.status in (Status.PASS, Status.SKIPPED))
    if not rest:
        return ""
    rows = []
    for entry in rest:
        f = entry.finding
        rows.append(
            f"<tr><td>{chip(f.status.value, STATUS[f.status.value])}</td><td>{e(f.title)}</td>"
            f"<td>{e(f.subject or 'tenant-wide')}</td><td>{e(method_label(entry))}</td><td>{e(f.message)}</td></tr>"
        )
    return (
        f'<details class="rest" open><summary>Checks passed or not applicable ({len(rest)})</summary>'
        "<table><thead><tr><th>Status</th><th>Check</th><th>Mailbox</th><th>Method</th><th>Detail</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )
