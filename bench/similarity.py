"""How long the similarity flags take for a class: N students made from the pset4 fixtures
(each with a distinct extra function), every pair compared with the template as boilerplate.

    python bench/similarity.py [--students 300]

The fixtures are mostly the reference with one bug each, so most pairs share most of their
code: a pessimistic case (independent code shares little and compares faster).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from grader.reporting.similarity import compare, own_code, starter_texts

REPO = Path(__file__).resolve().parent.parent
OWNED = ("mlp.py", "pset4.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    args = parser.parse_args()
    sources = sorted(p for p in (REPO / "tests" / "fixtures" / "pset4").iterdir() if (p / "mlp.py").is_file())
    base = [own_code(p, OWNED) for p in sources]
    docs = {f"s{i:04d}": base[i % len(base)] + f"\n\ndef extra_{i}(x):\n    return x * {i} + {i * i}\n"
            for i in range(args.students)}
    started = time.monotonic()
    pairs, _ = compare("pset4", docs, starter_texts([REPO / "student_template" / "pset4"], OWNED))
    seconds = time.monotonic() - started
    print(f"{args.students} students, {len(pairs)} pairs, {sum(p.flagged for p in pairs)} flagged: {seconds:.1f} s "
          f"({1000 * seconds / max(len(pairs), 1):.2f} ms per pair, fingerprints included)")


if __name__ == "__main__":
    main()
