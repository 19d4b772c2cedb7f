"""Start-up cost of `preflight --help` and `preflight explain TEXT`, against a minimal two-command typer app.

Usage: python benchmarks/startup.py [--runs 15] [--repeat 1]

Every command runs in a fresh process of this same interpreter, interleaved with the minimal app (so a change
in the machine's load hits both alike). Prints the median wall time of each, the ratio of preflight to the
minimal app doing the same kind of thing (its --help; one of its commands with an argument), the same for the
CPU time each process used (less disturbed by other work on a shared machine than the wall time), the modules
each preflight command imports, and whether a heavy library (msal, google-auth, requests...) was among them
(read from `python -X importtime`). With --repeat N it measures N times and then prints each ratio's median
and range over the repetitions. Aim: each ratio <= 1.2.

The first line says whether preflight is a regular or an editable install (`pip install -e`: its imports go
through setuptools' finder), and run it from a folder that holds no other copy of preflight: the current folder
comes first on the path of `python -c`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def run(code: str, args: list[str], importtime: bool = False) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process, its stderr)."""
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code, *args]
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) and not importtime:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, _children_cpu() - before, proc.stderr


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # processes run one at a time: the delta is the last one's
    return usage.ru_utime + usage.ru_stime


def _install_kind() -> str:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        direct = json.loads(distribution("smtp-preflight").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, ValueError):
        return "preflight not installed"
    return "editable install" if direct.get("dir_info", {}).get("editable") else "regular install"


def measure(name: str, ours: list[str], theirs: list[str], runs: int) -> tuple[float, float]:
    """One measurement of a command: prints it, returns (wall ratio, CPU ratio) of the medians."""
    mine, base = [], []
    for _ in range(runs):  # interleaved: a burst of load hits both
        base.append(run(MINIMAL, theirs)[:2])
        mine.append(run(PREFLIGHT, ours)[:2])
    trace = run(PREFLIGHT, ours, importtime=True)[2]
    modules = {line.split("|")[-1].strip() for line in trace.splitlines() if line.startswith("import time:")}
    heavy = sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})
    a, b = statistics.median(w for w, _ in mine), statistics.median(w for w, _ in base)
    ca, cb = statistics.median(c for _, c in mine), statistics.median(c for _, c in base)
    print(f"preflight {name:<13} {a * 1000:4.0f} ms; minimal typer app {b * 1000:4.0f} ms; ratio {a / b:.2f} "
          f"(aim <= 1.2); CPU {ca * 1000:4.0f} ms vs {cb * 1000:4.0f} ms, ratio {ca / cb:.2f}; {len(modules)} modules "
          f"imported; heavy: {', '.join(heavy) or 'none'}")
    return a / b, ca / cb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="measure this many times; then each ratio's spread")
    args = parser.parse_args()
    ratios: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        print(f"{sys.executable} ({_install_kind()}), median of {args.runs} runs each, load average "
              f"{os.getloadavg()[0]:.1f} at the start")
        for name, (ours, theirs) in COMMANDS.items():
            ratios[name].append(measure(name, ours, theirs, args.runs))
    if args.repeat > 1:
        for name, pairs in ratios.items():
            walls, cpus = sorted(w for w, _ in pairs), sorted(c for _, c in pairs)
            print(f"over {args.repeat} repetitions, preflight {name}: wall ratio median {statistics.median(walls):.2f} "
                  f"(range {walls[0]:.2f}-{walls[-1]:.2f}), CPU ratio median {statistics.median(cpus):.2f} "
                  f"(range {cpus[0]:.2f}-{cpus[-1]:.2f})")


if __name__ == "__main__":
    main()
