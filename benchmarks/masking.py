"""Masking and explain on 64 KiB adversarial inputs: each must take well under a second (linear time).

Usage: python -m benchmarks.masking (from the repository root)
Prints, per input, the seconds RunSecrets.mask (patterns plus two registered secrets) and explain take.
The inputs are tests/test_masking.py's ADVERSARIAL set; before the patterns were made linear,
"334 then a line of spaces" took 45 s to mask and 49 s to explain.
"""

from __future__ import annotations

import time

from preflight.causes import load_catalogue
from preflight.explain import explain
from preflight.runsecrets import RunSecrets
from tests.test_masking import ADVERSARIAL, SECRET, TOKEN, N


def main() -> None:
    secrets = RunSecrets()
    secrets.add(SECRET, TOKEN)
    catalogue = load_catalogue()
    print(f"{'input':32} {'mask s':>8} {'explain s':>10}")
    for name, text in sorted(ADVERSARIAL.items()):
        text = text[:N]
        start = time.perf_counter()
        secrets.mask(text)
        masked = time.perf_counter() - start
        start = time.perf_counter()
        explain(text, catalogue)
        explained = time.perf_counter() - start
        print(f"{name:32} {masked:8.3f} {explained:10.3f}")


if __name__ == "__main__":
    main()
