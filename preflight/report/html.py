"""One self-contained HTML file a consultant can hand to a customer: no script, font, image or stylesheet
from anywhere, every value escaped, readable on screen and on paper."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from typing import Any
from urllib.parse import urlsplit

from preflight.model import MailboxVerdict, Method, Report, Status, TargetResult, Verdict
from preflight.report.common import (
    VERDICT_ORDER,
    Entry,
    Labels,
    clean,
    compact_fix,
    evidence_pairs,
    fix_label,
    grouped,
    merged,
    method_label,
    methods,
    one_line,
    relevance,
    status_label,
    subjects,
    verdict_counts,
    when,
)
from preflight.report.fixtext import Segment, segments
from preflight.report.plan import Change, OAuthMove, Pair, Plan, build

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
tbody th{font-weight:600}
.addr{white-space:nowrap;hyphens:none}
.scroll{overflow-x:auto}
table.verdicts{min-width:560px}
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
.fix{margin-top:6px}.fix p{margin:6px 0}
.fix>b{display:block;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.cmd{position:relative;margin:6px 0;background:#0f172a;border-radius:6px}
.cmd pre{margin:0;padding:8px 64px 8px 12px;white-space:pre-wrap;color:#e2e8f0;hyphens:none;
font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.cmd .w{white-space:nowrap}
button.copy{position:absolute;top:6px;right:6px;font:600 11.5px system-ui,sans-serif;border:1px solid #64748b;
border-radius:4px;background:#1e293b;color:#e2e8f0;padding:2px 8px;cursor:pointer}
ol.plan{padding-left:22px;margin:8px 0}ol.plan>li{margin:0 0 14px;padding-left:4px}
ol.plan .head{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px}
ol.plan .where{color:var(--muted);font-size:12.5px}
p.impact{margin:4px 0;font-size:13px}ul.resolves{margin:4px 0;padding-left:18px;font-size:13px}
details.alt summary{cursor:pointer;color:var(--muted);font-size:12.5px}
p.sub{margin:14px 0 4px;font-weight:600}ul.grants{margin:0;padding-left:18px;font-size:13px}
ol.sources{font-size:12.5px;margin:4px 0 0;padding-left:22px}a.fn{text-decoration:none}
p.notice{border:1px solid var(--amber);background:var(--amber-bg);color:var(--amber);border-radius:6px;
padding:8px 12px}
p.more{margin:14px 0 0}
.note{font-size:13px;color:var(--blue)}
.docs{font-size:12.5px;margin:6px 0 0}.docs a{color:var(--brand)}
details.rest summary{cursor:pointer;font-weight:600;margin:18px 0 8px}
details.rest td{font-size:13px}
footer{color:var(--muted);font-size:12.5px;padding:8px 0 32px}
a{color:var(--brand)}
@media screen and (max-width:720px){.tiles{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media screen and (max-width:600px){.addr{white-space:normal;overflow-wrap:anywhere}}
@media screen and (max-width:860px){.wrap{padding:0 12px}section.card{padding:14px 12px}th,td{padding:6px 6px}}
@media print{
@page{size:A4;margin:8mm 10mm 9mm}
body{background:#fff;font-size:8.5pt;line-height:1.3}
.wrap{max-width:none;padding:0}
header.top{background:#fff;color:var(--ink);border-bottom:2px solid var(--ink);padding:0 0 6px}
header.top h1{font-size:17pt;margin:0 0 2px}header.top .lede{display:none}dl.meta{margin:4px 0 0;font-size:8.5pt}
.tiles{margin:8px 0 4px;gap:6px}.tile{padding:3px 10px}.tile .n{font-size:15pt}.tile .l{font-size:8pt}
p.counts{margin:2px 0 0;font-size:8.5pt}
section.card{border:0;padding:0;margin:0 0 8px}
section.target+section.target,section.card+section.target{break-before:page}
h2{font-size:14pt}h3{margin:10px 0 4px;font-size:9.5pt}h4{font-size:9.5pt;margin:8px 0 2px}
th,td{padding:2px 6px}thead th{font-size:7.5pt}
td .why,td ol.why{display:block;font-size:7.5pt;margin:0;padding:0;line-height:1.25;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;max-width:62mm}ol.why li{display:inline}ol.why li+li::before{content:" · "}
header.top .kicker{display:none}h4{margin:5px 0 1px}.chip{font-size:7.5pt;line-height:14px}
.chip,.tile,article.f,.alert,.cmd{-webkit-print-color-adjust:exact;print-color-adjust:exact}
tr,.tile,.cmd{break-inside:avoid}h2,h3,h4{break-after:avoid}
button.copy,details.rest,details.alt{display:none}
.cmd{background:#fff;border:1px solid var(--line);margin:3px 0}
.cmd pre{color:var(--ink);padding:2px 6px;font-size:7.5pt}
.scroll{overflow:visible}table.verdicts{min-width:0}
ol.plan>li{margin:0 0 5px}.fix p,p.impact{margin:1px 0;font-size:8pt}ol.plan .where{font-size:8pt}
article.f{padding:1px 8px;margin:2px 0;border-left-width:3px}article.f p{margin:0;font-size:7.5pt}
article.f h5{font-size:9pt}article.f header{gap:0 6px}
.tags,p.docs{font-size:7.5pt;margin:1px 0}
dl.ev{display:none}
article.f.s-unknown header,article.f.s-unknown header h5{display:inline}
article.f.s-unknown>p{display:inline;margin-left:4px}
article.f.s-unknown .tags{display:none}
ol.sources{font-size:7pt;line-height:1.2;columns:2;column-gap:16px}p.sub{margin:6px 0 2px}
ul.grants,ul.resolves{font-size:8pt;margin:1px 0}
footer{font-size:7pt;line-height:1.2;padding:2px 0 0}
}
"""


COPY_SCRIPT = """
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button.copy") : null;
  if (!button) { return; }
  var text = button.parentNode.querySelector("code").textContent;
  function done(ok) { button.textContent = ok ? "Copied" : "Select and copy"; }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
  } else {
    var range = document.createRange();
    range.selectNodeContents(button.parentNode.querySelector("code"));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    done(ok);
  }
});
"""


# What e() changes: control characters (clean), a CR, and the five characters HTML escapes.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f&<>\"']")


def e(value: object) -> str:
    text = value if type(value) is str else str(value)
    # Most values (addresses, titles, ids) hold none of them: one scan instead of a regex and six replaces.
    if _UNSAFE.search(text) is None:
        return text
    # Printable text (most of what holds an apostrophe or an ampersand) has no control character and no CR.
    return escape(text if text.isprintable() else clean(text), quote=True)


def address(value: object) -> str:
    """An address as one unbreakable word (class addr): wrapping it mid-word makes it unreadable."""
    return _address(value) if type(value) is str else f'<span class="addr">{e(value)}</span>'


@lru_cache(maxsize=4096)  # a tenant's plan names its mailboxes again and again
def _address(value: str) -> str:
    return f'<span class="addr">{e(value)}</span>'


def chip(kind: str, label: str) -> str:
    return f'<span class="chip s-{kind}">{MARK[kind]} {e(label)}</span>'


# The chips of a status or verdict by its own name, written once: a page shows one per finding and verdict.
STATUS_CHIPS = {kind: chip(kind, label) for kind, label in STATUS.items()}
VERDICT_CHIPS = {kind: chip(kind, label) for kind, label in VERDICT.items()}


class Memo(dict[str, str]):
    """One page's HTML for text it shows many times (titles, addresses, method lists), made on first use."""

    def __init__(self, make: Callable[[str], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: str) -> str:
        text = self[key] = self.make(key)
        return text


@dataclass(frozen=True)
class Extra:
    """What an audit adds to one target's section: notices (an exception that expired) and a link to the
    customer's own report, shown instead of the evidence (brief)."""

    notices: tuple[str, ...] = ()
    link: str | None = None
    brief: bool = False
    plan: Plan | None = None  # the target's action plan, when the caller built it already (for its other files)
    body: tuple[str, ...] | None = None  # its section_body, when the caller made it already (for its other page)


def render(report: Report, extras: Sequence[Extra] | None = None, top: str = "", labels: Labels | None = None) -> str:
    """The report page; `extras` one per target, `top` HTML placed after the summary (the audit's matrix)."""
    labels = labels or Labels.load()
    extras = list(extras or [Extra() for _ in report.targets])
    count = len(report.targets)
    only = report.targets[0] if count == 1 else None
    accepted = sum(1 for t in report.targets for f in t.findings if f.accepted)
    summary = summary_html(verdict_counts(report.targets), report.summary(), accepted)
    head, foot = frame(report.generated_at, report.tool_version, count, only, summary, top, labels)
    parts = [head]
    if count > 1:
        parts.append(overview([overview_row(i, t, verdict_counts([t]), x.link, labels)
                               for i, (t, x) in enumerate(zip(report.targets, extras, strict=True), 1)]))
    for i, (t, x) in enumerate(zip(report.targets, extras, strict=True), 1):
        parts += _section_lines(i, t, labels, x, count == 1)  # joined once, with the page
    if not report.targets:
        parts.append('<section class="card"><p>No targets were evaluated.</p></section>')
    return "\n".join([*parts, foot, ""])  # the page's last line break in the same join: one copy of the page


def frame(generated_at: str, version: str, count: int, only: TargetResult | None, summary: str, top: str,
          labels: Labels) -> tuple[str, str]:
    """The page before its targets (through `top`) and after them, for `count` targets (`only`: the one)."""
    day = one_line(generated_at)[:10]
    title = " · ".join(p for p in (only.name if only else "", "SMTP readiness report", day) if p)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light">',
        f'<meta name="generator" content="preflight {e(version)}">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style></head>",
        "<body>",
        _header(generated_at, version, count, only, labels),
        '<main class="wrap">',
        summary,
        top,
    ]
    foot = [
        "</main>",
        '<footer class="wrap">Produced by preflight, a read-only check: it reads tenant settings and changes '
        "nothing. Verdicts hold for the settings as read at the time above. “Unknown” means a setting "
        "could not be read; grant what the finding names and run it again.</footer>",
        f"<script>{COPY_SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(head), "\n".join(foot)


def _header(generated_at: str, version: str, count: int, only: TargetResult | None, labels: Labels) -> str:
    meta = [("Generated", when(generated_at)), ("Tool", f"preflight {version}")]
    if only is not None:
        heading, kicker = only.name, "SMTP readiness report"
        meta = [("Provider", labels.provider(only.provider)), ("Tenant", only.tenant), *meta]
    else:
        heading, kicker = "SMTP readiness report", "preflight"
        meta.append(("Targets", str(count)))
    items = "".join(f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in meta)
    return (
        f'<header class="top"><div class="wrap"><p class="kicker">{e(kicker)}</p><h1>{e(heading)}</h1>'
        '<p class="lede">Whether a third-party service can send mail through each mailbox over SMTP, per sign-in '
        "method, what blocks it and the changes that fix it.</p>"
        f'<dl class="meta">{items}</dl></div></header>'
    )


def summary_html(counts: Mapping[str, int], status: Mapping[str, int], accepted: int) -> str:
    """The verdict tiles and finding counts: `counts` per verdict (verdict_counts), `status` per finding status."""
    colour = {"blocked": "var(--red)", "incomplete": "var(--violet)", "at-risk": "var(--amber)",
              "ready": "var(--green)"}
    tiles = "".join(
        f'<div class="tile" style="--c:{colour[v.value]}"><div class="n">{counts[v.value]}</div>'
        f'<div class="l">{VERDICT[v.value]}</div></div>'
        for v in VERDICT_ORDER
    )
    chips = " ".join(chip(k, f"{n} {STATUS[k]}") for k, n in status.items() if n)
    if accepted:
        chips += " " + chip("accepted", f"{accepted} accepted as exceptions")
    return (
        f'<div class="tiles" role="group" aria-label="Verdicts per mailbox and sign-in method">{tiles}</div>'
        f'<p class="counts">Verdicts count each mailbox once per sign-in method. Findings: {chips or "none"}</p>'
    )


def overview_row(i: int, t: TargetResult, counts: Mapping[str, int], link: str | None, labels: Labels) -> str:
    """Target `i`'s row in the overview: `counts` its verdicts (verdict_counts); its findings are not read."""
    if t.errors:
        cells = f'<td colspan="4">{chip("unknown", "Not evaluated")}</td>'
    else:
        cells = "".join(f"<td>{counts[v.value]}</td>" for v in VERDICT_ORDER)
    own = f' · <a href="{e(link)}">own report</a>' if link else ""
    return (f'<tr><th scope="row"><a href="#target-{i}">{e(t.name)}</a>{own}</th>'
            f"<td>{e(labels.provider(t.provider))}</td><td>{address(t.tenant)}</td>{cells}</tr>")


def overview(rows: Sequence[str]) -> str:
    head = "".join(f"<th>{VERDICT[v.value]}</th>" for v in VERDICT_ORDER)
    return (
        '<section class="card"><h2>Targets</h2><div class="scroll"><table><thead><tr><th>Target</th>'
        f"<th>Provider</th><th>Tenant</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def target_section(index: int, t: TargetResult, labels: Labels, extra: Extra, alone: bool) -> str:
    """Target `index`'s section; `alone`: the page's only target, named in its header instead."""
    return "\n".join(_section_lines(index, t, labels, extra, alone))


def _section_lines(index: int, t: TargetResult, labels: Labels, extra: Extra, alone: bool) -> list[str]:
    parts = section_heading(index, t, labels, extra.link, alone)
    plan = extra.plan or build(t, labels.catalogue)
    esc, addr = Memo(e), Memo(address)
    parts += extra.body if extra.body is not None else section_body(t, labels, extra.notices, plan, esc, addr)
    if extra.brief:
        if extra.link:
            parts.append(f'<p class="more">Evidence for every finding: <a href="{e(extra.link)}">'
                         f"{e(extra.link)}</a></p>")
    else:
        notes, seen = Footnotes(index), _Seen(esc)
        groups = grouped(t)
        if groups:
            parts.append("<h3>Evidence</h3>")
        for subject, findings in groups:
            parts.append(f"<h4>{addr[subject] if subject else 'Tenant-wide'}</h4>")
            parts += [_finding(entry, t.provider, labels, plan, notes, seen) for entry in findings]
        parts.append(notes.render())
        parts.append(_rest(t, esc, addr))
    parts.append("</section>")
    return parts


def section_body(t: TargetResult, labels: Labels, notices: Sequence[str], plan: Plan, esc: Memo | None = None,
                 addr: Memo | None = None) -> tuple[str, ...]:
    """What a target's full and brief sections hold after their heading and before the evidence: its errors,
    `notices`, verdict matrix and action plan (`esc` and `addr`: the page's memos, else the section's own)."""
    parts = [f'<div class="alert" role="alert"><strong>Not evaluated:</strong> {e(err)}</div>' for err in t.errors]
    parts += [f'<p class="notice">{e(n)}</p>' for n in notices]
    if t.mailboxes:
        parts.append(_matrix(t, labels, esc or Memo(e), addr or Memo(address)))
    if not t.errors:
        parts.append(_plan(plan, t))
    return tuple(parts)


def section_heading(index: int, t: TargetResult, labels: Labels, link: str | None, alone: bool) -> list[str]:
    """The first lines of a target's section: all of it that depends on its place in the page (only its name,
    provider, tenant and link are read of `t`)."""
    parts = [f'<section class="card target" id="target-{index}">']
    if not alone:
        own = f' · <a href="{e(link)}">the customer’s own report</a>' if link else ""
        parts += [f"<h2>{e(t.name)}</h2>",
                  f'<p class="tmeta">{e(labels.provider(t.provider))} · {e(t.tenant)}{own}</p>']
    return parts


def _matrix(t: TargetResult, labels: Labels, esc: Memo, addr: Memo) -> str:
    cols = methods(t)
    # what bears on the verdicts incomplete or at risk, for their notes (the others' notes need none)
    noted = [mv for mv in t.mailboxes if mv.verdict in (Verdict.INCOMPLETE, Verdict.AT_RISK)]
    bearing = relevance(t, noted) if noted else None
    by_key: dict[tuple[str, Method], MailboxVerdict] = {(mv.address, mv.method): mv for mv in t.mailboxes}
    head = "".join(f'<th scope="col">{e(METHOD.get(m.value, m.value))}</th>' for m in cols)
    layers: dict[tuple[str, ...], str] = {}  # the list of blocking causes, by their ids: most repeat per mailbox
    rows = []
    for mailbox in subjects(t):
        cells = []
        for m in cols:
            mv = by_key.get((mailbox, m))
            if mv is None:
                cells.append('<td><span class="why">not evaluated</span></td>')
                continue
            if len(mv.blocking) > 1:
                # Every blocking layer, in the order a sign-in meets them: the customer fixes them all.
                why = layers.get(tuple(mv.blocking), "")
                if not why:
                    items = "".join(f"<li>{e(labels.cause(c, t))}</li>" for c in mv.blocking)
                    why = layers[tuple(mv.blocking)] = f'<ol class="why">{items}</ol>'
            else:
                note = labels.note(t, mv, bearing)
                why = f'<span class="why">{esc[note]}</span>' if note else ""
            cells.append(f"<td>{VERDICT_CHIPS[mv.verdict]}{why}</td>")
        rows.append(f'<tr><th scope="row">{addr[mailbox]}</th>{"".join(cells)}</tr>')
    return (
        "<h3>Verdict per mailbox and sign-in method</h3>"
        f'<div class="scroll"><table class="verdicts"><thead><tr><th scope="col">Mailbox</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def fix_html(segs: Sequence[Segment]) -> str:
    """Prose as paragraphs, each command a block of its own with a copy button; lines wrap only between
    words, so a command is never hyphenated (New-ServicePrincipal stays whole)."""
    out = []
    for seg in segs:
        if seg.command:
            lines = "\n".join(" ".join(f'<span class="w">{e(w)}</span>' for w in line.split(" "))
                              for line in seg.text.split("\n"))
            out.append(f'<div class="cmd"><pre><code>{lines}</code></pre>'
                       '<button type="button" class="copy" aria-label="Copy the command">Copy</button></div>')
        else:
            out.append(f"<p>{e(seg.text)}</p>")
    return "".join(out)


def _pairs(pairs: Sequence[Pair]) -> str:
    by_box: dict[str, list[str]] = {}
    for mailbox, method in pairs:
        by_box.setdefault(mailbox, []).append(method._value_)
    return ", ".join(f'{address(a)} ({e(", ".join(m))})' for a, m in by_box.items())


def _plan(plan: Plan, t: TargetResult) -> str:
    parts = ["<h3>Action plan</h3>"]
    if not plan.steps:
        parts.append("<p>Nothing to change: no check failed or warned.</p>")
    items = []
    for step in plan.steps:
        if isinstance(step, OAuthMove):
            items.append(_oauth_step(step, plan))
            continue
        kind = "fail" if step.status is Status.FAIL else "warn"
        where = "Tenant-wide" if not step.subjects else ", ".join(
            address(s) for s in step.subjects)
        impact = []
        if step.ready:
            impact.append(f"<b>Makes ready:</b> {_pairs(step.ready)}")
        rest = [p for p in step.unblocks if p not in step.ready]
        if rest:
            verb = "Also needed for" if step.status is Status.FAIL else "Removes the risk for"
            impact.append(f"<b>{verb}:</b> {_pairs(rest)}")
        label = "Blocks" if step.status is Status.FAIL else "At risk"
        items.append(
            f'<li class="step s-{kind}"><div class="head">{chip(kind, label)} <b>{e(step.title)}</b>'
            f'<span class="where">{where}</span></div>'
            + (f'<p class="impact">{" · ".join(impact)}</p>' if impact else "")
            + f'<div class="fix">{fix_html(step.fix)}</div></li>'
        )
    if items:
        parts.append(f'<ol class="plan">{"".join(items)}</ol>')
    if plan.grants or plan.undecided:
        grants = "".join(f"<li>Grant {e(g.text)} ({g.checks} check{'s' if g.checks > 1 else ''} could not read "
                         "what they need)</li>" for g in plan.grants)
        if plan.undecided:
            grants += (f"<li>{plan.undecided} check{'s' if plan.undecided > 1 else ''} could not decide from what "
                       "was read: see the evidence</li>")
        parts.append(f'<p class="sub">For a complete verdict, before the next run:</p><ul class="grants">{grants}</ul>')
    return "".join(parts)


def _oauth_step(step: OAuthMove, plan: Plan) -> str:
    def where(c: Change) -> str:  # said once in the step when every cause has the same mailboxes
        return "" if set(c.subjects) == set(step.mailboxes) else \
            f" — {', '.join(address(s) for s in c.subjects) or 'tenant-wide'}"

    resolves = "".join(
        f"<li><b>{e(c.title)}</b>{where(c)}"
        f'<details class="alt"><summary>To keep Basic instead</summary><div class="fix">{fix_html(c.fix)}</div>'
        "</details></li>" for c in step.resolves)
    impact = []
    if step.ready:
        impact.append(f"<b>Ready over OAuth today:</b> {_pairs(step.ready)}")
    if step.others:
        impact.append("<b>Over OAuth still needs another step:</b> " + ", ".join(
            f"{address(mv.address)} ({e(mv.method.value)}: {e(VERDICT[mv.verdict.value])})"
            for mv in step.others))
    return (
        f'<li class="step s-pass"><div class="head">{chip("pass", "Recommended")} <b>{e(step.title)}</b></div>'
        f'<p class="impact">Resolves at once every Basic-only cause below, for '
        f"{', '.join(address(a) for a in step.mailboxes)}:</p>"
        f'<ul class="resolves">{resolves}</ul>'
        + "".join(f'<p class="impact">{i}</p>' for i in impact)
        + f'<div class="fix">{fix_html(step.fix)}</div></li>'
    )


class Footnotes:
    """Sources as numbered links at the end of a target's evidence, not as notes inside it; `target` (its
    section's number) keeps the anchors of one target's sources apart from another's, the same in every run."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.urls: dict[str, int] = {}

    def ref(self, url: str) -> str:
        n = self.urls.setdefault(url, len(self.urls) + 1)
        return f'<a class="fn" href="#src-{self.target}-{n}">[{n}]</a>'

    def render(self) -> str:
        if not self.urls:
            return ""
        items = "".join(f'<li id="src-{self.target}-{n}"><a href="{e(u)}">{e(_short(u))}</a></li>'
                        for u, n in self.urls.items())
        return f'<p class="sub">Sources</p><ol class="sources">{items}</ol>'


SOURCE_KEYS = ("source", "sources", "docs", "reference")
URL = re.compile(r"https://[^\s\"'<>)]+")


# Evidence values written the same way for every key they are under: a page keeps their HTML by key, type and
# value (True and 1 are one dict key but two texts); not floats, as -0.0 == 0.0.
_SAME_TEXT = frozenset({str, int, bool, type(None)})


class _Seen:
    """One section's HTML for what its findings repeat (most evidence items, every remediation), made once."""

    def __init__(self, esc: Memo) -> None:
        self.esc = esc
        # an evidence item's HTML (or "" for a source) and the source links it holds
        self.items: dict[tuple[object, type, object], tuple[str, list[str]]] = {}
        self.fixes: dict[str, str] = {}

    def evidence(self, evidence: Mapping[str, Any]) -> tuple[str, list[str]]:
        """The finding's evidence but its sources as a list (dl.ev), or "" if it has none; and its source links."""
        items = self.items
        out, sources = [], []
        for k, v in evidence.items():
            key = (k, type(v), v) if type(v) in _SAME_TEXT else None
            seen = items.get(key) if key is not None else None
            if seen is None:
                seen = self._item(k, v)
                if key is not None:
                    items[key] = seen
            out.append(seen[0])
            sources += seen[1]
        shown = "".join(out)
        return (f'<dl class="ev">{shown}</dl>' if shown else ""), sources

    def _item(self, k: str, v: Any) -> tuple[str, list[str]]:
        if k.lower() in SOURCE_KEYS:
            return "", [u.rstrip(".,;") for u in URL.findall(str(v))]
        ((name, value),) = evidence_pairs({k: v})
        return f"<dt>{self.esc[name]}</dt><dd>{self.esc[value]}</dd>", []

    def fix(self, text: str) -> str:
        html = self.fixes.get(text)
        if html is None:
            html = self.fixes[text] = fix_html(segments(text))
        return html


def _finding(entry: Entry, provider: str, labels: Labels, plan: Plan, notes: Footnotes, seen: _Seen) -> str:
    f, esc = entry.finding, seen.esc
    label = status_label(f)
    # Problem first: where a finding fails or warns, its heading is the cause, not the healthy state checked.
    problem = f.status in (Status.FAIL, Status.WARN) and f.cause is not None
    heading = labels.cause(f.cause, None) if problem and f.cause else f.title
    tags = [esc[f"{f.severity} severity"], esc[method_label(entry)], f"<code>{esc[f.check]}</code>"]
    parts = ["", f"<p>{e(f.message)}</p>"]  # the header, once the tags are complete
    if f.accepted:
        parts.append(f'<p class="note"><strong>Accepted exception:</strong> {e(f.accepted)}</p>')
    evidence, sources = seen.evidence(f.evidence)
    if evidence:
        parts.append(evidence)
    docs = labels.docs(f.cause, provider) if f.status is not Status.UNKNOWN else []
    refs = " ".join(notes.ref(u) for u in dict.fromkeys([*sources, *docs]))
    step = plan.step_of(f)
    if step is not None:
        tags.append(f"fix: step {step} of the action plan")
    if refs:
        tags.append(f"sources {refs}")
    parts[0] = (f'<article class="f s-{label}"><header>{STATUS_CHIPS[label]}<h5>{esc[heading]}</h5>'
                f'<span class="tags">{" · ".join(tags)}</span></header>')
    if step is None:
        fix = compact_fix(f)
        if fix:
            parts.append(f'<div class="fix"><b>{fix_label(f)}</b>{seen.fix(fix)}</div>')
    parts.append("</article>")
    return "\n".join(parts)


def _short(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or "") + parts.path


def _rest(t: TargetResult, esc: Memo, addr: Memo) -> str:
    """Passed and not-applicable checks: the record of what was verified. Open, so it also prints."""
    rest = merged([f for f in t.findings if f.status is Status.PASS or f.status is Status.SKIPPED])
    if not rest:
        return ""
    shown: dict[tuple[Method, ...], str] = {}  # the methods cell, by the methods listed: a page has few
    rows = []
    for entry in rest:
        f, listed = entry
        how = shown.get(listed)
        if how is None:
            how = shown[listed] = esc[method_label(entry)]
        rows.append(
            f"<tr><td>{STATUS_CHIPS[f.status]}</td><td>{esc[f.title]}</td>"
            f"<td>{addr[f.subject] if f.subject else 'tenant-wide'}</td><td>{how}</td><td>{e(f.message)}</td></tr>"
        )
    return (
        f'<details class="rest" open><summary>Checks passed or not applicable ({len(rest)})</summary>'
        '<div class="scroll"><table><thead><tr><th>Status</th><th>Check</th><th>Mailbox</th><th>Method</th>'
        "<th>Detail</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></div></details>"
    )
