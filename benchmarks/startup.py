"""Start-up cost of `preflight --help` and `preflight explain`: wall time and the heavy modules they import.

Usage: python benchmarks/startup.py [--runs N]
Prints the median wall time over N runs of each command and whether msal or google-auth got imported
(read from `python -X importtime`, which lists every module a process imports).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "--help": ["--help"],
    "explain": ["explain", "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."],
    "causes": ["causes", "--format", "json"],
}
HEAVY = ("msal", "google.auth", "google_auth_oauthlib", "googleapiclient", "cryptography", "requests")


def run(args: list[str], importtime: bool = False) -> tuple[float, str]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c",
           "import sys; from preflight.cli import main; main(sys.argv[1:])", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={"NO_COLOR": "1", "PATH": ""}, check=False)
    return time.perf_counter() - start, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    baseline = statistics.median(
        run_time for run_time, _ in (
            (lambda t: (t, ""))(_python_only()) for _ in range(runs)
        )
    )
    print(f"python -c pass (interpreter start): {baseline * 1000:.0f} ms median of {runs}")
    for name, args in COMMANDS.items():
        times = [run(args)[0] for _ in range(runs)]
        _, trace = run(args, importtime=True)
        modules = {line.split("|")[-1].strip() for line in trace.splitlines() if line.startswith("import time:")}
        heavy = sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})
        print(f"preflight {name}: {statistics.median(times) * 1000:.0f} ms median of {runs}; "
              f"{len(modules)} modules imported; heavy: {', '.join(heavy) or 'none'}")


def _python_only() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
