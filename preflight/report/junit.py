"""JUnit XML for CI: a testsuite per target, a testcase per finding.

fail -> <failure>, unknown -> <error> (the check could not run), skipped and accepted -> <skipped>,
warn -> a passing testcase that says so in a property and in system-out. A target that could not be
read at all gets one erroring testcase, so a CI run cannot go green on a tenant it never saw.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from preflight.model import Finding, Report, Status, TargetResult
from preflight.report.common import clean, evidence_pairs, fix_label, fix_text, method_label, one_line, target_heading


def render(report: Report) -> str:
    root = ET.Element("testsuites", name="preflight", timestamp=clean(report.generated_at))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for target in report.targets:
        suite = _suite(root, target, report.generated_at)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _suite(root: ET.Element, target: TargetResult, stamp: str) -> ET.Element:
    suite = ET.SubElement(root, "testsuite", name=target_heading(target), timestamp=clean(stamp))
    props = ET.SubElement(suite, "properties")
    for name, value in (("provider", target.provider), ("tenant", target.tenant)):
        ET.SubElement(props, "property", name=name, value=clean(value))
    for mv in target.mailboxes:
        ET.SubElement(props, "property", name=f"verdict {clean(mv.address)} {mv.method.value}", value=mv.verdict.value)
    classname = clean(f"{target.provider}.{target.name}")
    counts = dict.fromkeys(("failures", "errors", "skipped"), 0)
    for error in target.errors:
        case = ET.SubElement(suite, "testcase", classname=classname, name="sign-in and collection")
        ET.SubElement(case, "error", message=one_line(error), type="not-evaluated").text = clean(error)
        counts["errors"] += 1
    for f in target.findings:
        kind = _case(suite, classname, f)
        if kind:
            counts[kind] += 1
    suite.set("tests", str(len(target.errors) + len(target.findings)))
    for key, count in counts.items():
        suite.set(key, str(count))
    return suite


def _case(suite: ET.Element, classname: str, f: Finding) -> str | None:
    """Add the testcase; return which counter it bumps."""
    name = f"{f.check} [{f.subject or 'tenant-wide'}] ({method_label(f.method)})"
    case = ET.SubElement(suite, "testcase", classname=classname, name=clean(name))
    if f.accepted:
        ET.SubElement(case, "skipped", message=one_line(f"accepted: {f.accepted}"))
        return "skipped"
    if f.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message=one_line(f.message))
        return "skipped"
    if f.status is Status.FAIL:
        ET.SubElement(case, "failure", message=one_line(f.message), type=f.cause or f.check).text = _details(f)
        return "failures"
    if f.status is Status.UNKNOWN:
        ET.SubElement(case, "error", message=one_line(f.message), type="unknown").text = _details(f)
        return "errors"
    if f.status is Status.WARN:
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", name="status", value="warn")
        if f.cause:
            ET.SubElement(props, "property", name="cause", value=f.cause)
        ET.SubElement(case, "system-out").text = f"WARNING: {_details(f)}"
    return None


def _details(f: Finding) -> str:
    lines = [clean(f.message)]
    lines += [f"{k}: {v}" for k, v in evidence_pairs(f.evidence)]
    fix = fix_text(f)
    if fix:
        lines.append(f"{fix_label(f)}: {clean(fix)}")
    return "\n".join(lines)
