"""How well `preflight explain` names the cause of real error texts (tests/data/explain_corpus.json).

Usage: python benchmarks/explain_corpus.py [--catalogue causes.toml] [--only NOTE-WORDS]

Prints top-1 accuracy on the whole corpus and the misses. --only keeps the entries whose note contains the
words, e.g. --only "issue-18 tuning as a hold-out" for the texts collected after issue 18's tuning.
--catalogue scores another catalogue, so a hold-out can be scored the way it was before it joined. Issue 18's
13 hold-out texts were scored against 3eed1d7's catalogue before its `\bmessage rejected\b` alternative was
added (the fix for the two it missed); that state is reproduced by removing the alternative again:
  git show 3eed1d7:preflight/data/causes.toml | sed 's/|\\bmessage rejected\\b//' > /tmp/before.toml
  python benchmarks/explain_corpus.py --catalogue /tmp/before.toml --only "issue-18 tuning as a hold-out"
which prints 11/13 (the two misses are message-rejected texts).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from preflight.causes import load_catalogue
from preflight.explain import explain

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "explain_corpus.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, help="causes.toml to score (default: the installed one)")
    parser.add_argument("--only", help="keep entries whose note contains these words")
    args = parser.parse_args()
    catalogue = load_catalogue(args.catalogue)
    entries = json.loads(CORPUS.read_text(encoding="utf-8"))
    if args.only:
        entries = [e for e in entries if args.only in e.get("note", "")]
    hits = 0
    for e in entries:
        matches = explain(e["text"], catalogue).matches
        top = matches[0].cause if matches else None
        if top == e["cause"]:
            hits += 1
        else:
            print(f"miss: expected {e['cause']}, got {top}: {e['source']}")
    share = hits / len(entries) if entries else 0.0
    print(f"top-1: {hits}/{len(entries)} = {share:.3f}")


if __name__ == "__main__":
    main()
