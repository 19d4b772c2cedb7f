"""The reports in a real headless browser: they render without console errors, each demo customer prints on at
most two A4 pages, addresses never break inside a word at 1024 px and wider, and the matrix stays usable at 800."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from preflight.audit.inventory import load_inventory
from preflight.audit.output import write_consolidated, write_tenant
from preflight.audit.runner import run_audit
from preflight.causes import load_catalogue
from preflight.providers import Registry
from tests.audit.test_audit import GOOD, ToyProvider
from tests.conftest import NOW

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
ROOT = Path(__file__).resolve().parents[2]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="chromium not installed (CI installs it)")
# Run in the page after load; the verdict lands in the title, which --dump-dom prints.
LAYOUT_PROBE = """<script>
window.addEventListener("load", function () {
  var broken = [];
  document.querySelectorAll(".addr").forEach(function (el) {
    var lines = new Set();
    var range = document.createRange();
    range.selectNodeContents(el);
    Array.prototype.forEach.call(range.getClientRects(), function (r) {
      if (r.width > 0) { lines.add(Math.round(r.top)); }
    });
    if (lines.size > 1) { broken.push(el.textContent); }
  });
  var cut = [];
  document.querySelectorAll("table.verdicts").forEach(function (t) {
    var box = t.parentElement;
    var scrolls = getComputedStyle(box).overflowX === "auto";
    if (t.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !scrolls) { cut.push(1); }
  });
  document.title = "PROBE" + JSON.stringify({broken: broken, cut: cut.length,
                                             wide: document.documentElement.scrollWidth > window.innerWidth});
});
</script>"""


def browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed: .ci/run installs it with apt-get"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


def pdf_pages(pdf: Path) -> int:
    """Pages in a PDF Chromium wrote: its page objects (/Type /Page, not /Pages)."""
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


@pytest.fixture(scope="module")
def demo_audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from preflight.pipeline import default_registry

    registry = default_registry()
    inv = load_inventory(ROOT / "docs" / "examples" / "demo-inventory.toml", registry.names)
    out = tmp_path_factory.mktemp("demo-audit")
    runs, _ = run_audit(inv, registry, load_catalogue(), NOW, out / "cache")
    for run in runs:
        write_tenant(run, out / "report", NOW)
    write_consolidated(runs, out / "report", NOW, interrupted=False)
    return out / "report"


@needs_chromium
def test_audit_report_renders_in_chromium_without_console_errors(tmp_path: Path) -> None:
    (tmp_path / "inventory.toml").write_text(GOOD)
    inv = load_inventory(tmp_path / "inventory.toml", ["microsoft"])
    provider = ToyProvider({"contoso.example": {"hr@contoso.example": True}, "fabrikam.example": {}},
                           fail={"broken.example"})
    runs, _ = run_audit(inv, Registry([provider]), load_catalogue(), NOW, tmp_path / "cache")
    out = write_consolidated(runs, tmp_path / "out", NOW, interrupted=False)
    page = out / "report.html"

    dom = browse(page, tmp_path / "profile1", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Readiness across tenants" in dom.stdout and 'class="matrix"' in dom.stdout
    # the matrix's numbered causes are named in a legend that prints, not only in a tooltip
    assert f"<li>{load_catalogue().get('smtp-auth-disabled-mailbox').title}</li>" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []

    shot = tmp_path / "report.png"
    result = browse(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,1600")
    assert result.returncode == 0 and shot.stat().st_size > 10_000


@needs_chromium
def test_every_demo_customer_prints_on_at_most_two_a4_pages(demo_audit: Path, tmp_path: Path) -> None:
    counts = {}
    for folder in sorted(p for p in demo_audit.iterdir() if p.is_dir()):
        boxes = {m["address"] for m in json.loads((folder / "report.json").read_text())["targets"][0]["mailboxes"]}
        assert len(boxes) <= 5
        pdf = tmp_path / f"{folder.name}.pdf"
        result = browse(folder / "report.html", tmp_path / f"profile-{folder.name}", "--no-pdf-header-footer",
                        f"--print-to-pdf={pdf}")
        assert result.returncode == 0, result.stderr[-2000:]
        counts[folder.name] = pdf_pages(pdf)
    assert len(counts) == 7 and all(1 <= n <= 2 for n in counts.values()), counts
    # the consolidated report starts each customer on a new page: more pages than customers
    pdf = tmp_path / "all.pdf"
    browse(demo_audit / "report.html", tmp_path / "profile-all", "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert pdf_pages(pdf) > len(counts)


@needs_chromium
@pytest.mark.parametrize(("width", "check"), [(1024, "broken"), (1440, "broken"), (800, "cut")])
def test_addresses_stay_whole_and_the_matrix_stays_usable(demo_audit: Path, tmp_path: Path, width: int,
                                                          check: str) -> None:
    for folder in ("fabrikam", "tailspin"):
        page = tmp_path / f"{folder}.html"
        page.write_text((demo_audit / folder / "report.html").read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
        dom = browse(page, tmp_path / f"profile-{folder}-{width}", "--dump-dom", f"--window-size={width},900",
                     "--virtual-time-budget=3000")
        found = re.search(r"<title>PROBE(.*?)</title>", dom.stdout)
        assert found, dom.stderr[-2000:]
        probe = json.loads(found.group(1).replace("&quot;", '"'))
        if check == "broken":
            assert probe["broken"] == [], (width, folder)  # no address wraps at this width
        else:
            assert probe["cut"] == 0 and not probe["wide"], (width, folder)  # fits, or scrolls in its own box
