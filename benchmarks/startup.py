"""Start-up cost of `preflight --help` and `preflight explain TEXT`, against a minimal two-command typer app.

Usage: python benchmarks/startup.py [--runs 15]

Every command runs in a fresh process of this same interpreter, interleaved with the minimal app (so a change
in the machine's load hits both alike). Prints the median wall time of each, the ratio of preflight to the
minimal app doing the same kind of thing (its --help; one of its commands with an argument), the modules each
preflight command imports, and whether a heavy library (msal, google-auth, requests...) was among them
(read from `python -X importtime`). Aim: each ratio <= 1.2.

The first line says whether preflight is a regular or an editable install (`pip install -e`: its imports go
through setuptools' finder), and run it from a folder that holds no other copy of preflight: the current folder
comes first on the path of `python -c`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MINIMAL = """
import sys
import typer

app = typer.Typer()


@app.command()
def hello(name: str) -> None:
    print(f"hello {name}")


@app.command()
def bye() -> None:
    print("bye")


app(sys.argv[1:])
"""
PREFLIGHT = "import sys; from preflight.cli import main; main(sys.argv[1:])"
TEXT = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
# name -> (preflight arguments, the minimal app's arguments for the same kind of work)
COMMANDS = {
    "--help": (["--help"], ["--help"]),
    "explain TEXT": (["explain", TEXT], ["hello", TEXT]),
}
HEAVY = ("msal", "google.auth", "google_auth_oauthlib", "googleapiclient", "cryptography", "requests")
ENV = {"NO_COLOR": "1", "PATH": "", "COLUMNS": "100", "HOME": os.environ.get("HOME", "/")}


def run(code: str, args: list[str], importtime: bool = False) -> tuple[float, str]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code, *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) and not importtime:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stderr


def _install_kind() -> str:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        direct = json.loads(distribution("smtp-preflight").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        return "preflight not installed"
    return "editable install" if direct.get("dir_info", {}).get("editable") else "regular install"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    print(f"{sys.executable} ({_install_kind()}), median of {runs} runs each, load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    for name, (ours, theirs) in COMMANDS.items():
        mine, base = [], []
        for _ in range(runs):  # interleaved: a burst of load hits both
            base.append(run(MINIMAL, theirs)[0])
            mine.append(run(PREFLIGHT, ours)[0])
        _, trace = run(PREFLIGHT, ours, importtime=True)
        modules = {line.split("|")[-1].strip() for line in trace.splitlines() if line.startswith("import time:")}
        heavy = sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})
        a, b = statistics.median(mine), statistics.median(base)
        print(f"preflight {name:<13} {a * 1000:4.0f} ms; minimal typer app {b * 1000:4.0f} ms; ratio {a / b:.2f} "
              f"(aim <= 1.2); {len(modules)} modules imported; heavy: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
