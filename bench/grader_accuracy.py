"""Balanced accuracy of reasonlite.grader on the peer equivalence cases and on our own cases.

    .venv/bin/python bench/grader_accuracy.py [PEER.jsonl] [--cases tests/grader_cases.jsonl] [--workers 2]
        [--timeout 10]

PEER.jsonl defaults to ../shared/graders/peer_equiv_cases.jsonl (relative to the repository root). For each file it
prints per-source and overall balanced accuracy, TPR (true pairs judged equal) and TNR (unequal pairs judged
unequal), then lists every misgraded case. A verdict of None (timeout) counts as wrong for either class.
"""
import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from reasonlite.grader import Grader


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rates(rows):
    """(balanced accuracy, TPR, TNR, n_true, n_false) of (label, verdict) rows."""
    pos = [v is True for lab, v in rows if lab]
    neg = [v is False for lab, v in rows if not lab]
    tpr = sum(pos) / len(pos) if pos else float("nan")
    tnr = sum(neg) / len(neg) if neg else float("nan")
    parts = [r for r in (tpr, tnr) if r == r]
    return sum(parts) / len(parts), tpr, tnr, len(pos), len(neg)


def report(name, cases, verdicts, source_key):
    by_source = defaultdict(list)
    for case, verdict in zip(cases, verdicts):
        by_source[case.get(source_key, "-")].append((case["equal"], verdict))
    print(f"\n== {name}: {len(cases)} cases")
    if len(by_source) > 1:
        for src, rows in sorted(by_source.items()):
            bal, tpr, tnr, npos, nneg = rates(rows)
            print(f"  {src[-70:]:70s} bal={bal:.3f} TPR={tpr:.3f} ({npos}) TNR={tnr:.3f} ({nneg})")
    bal, tpr, tnr, npos, nneg = rates([(c["equal"], v) for c, v in zip(cases, verdicts)])
    print(f"  OVERALL balanced accuracy={bal:.4f} TPR={tpr:.4f} ({npos}) TNR={tnr:.4f} ({nneg})")
    wrong = [(i, c, v) for i, (c, v) in enumerate(zip(cases, verdicts), 1) if v is not c["equal"]]
    for i, c, v in wrong:
        print(f"  MISGRADED line {i}: label={c['equal']} got={v} gold={c['gold'][:80]!r} pred={c['pred'][-120:]!r}")
    return bal


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", nargs="?", default=str(ROOT.parent / "shared" / "graders" / "peer_equiv_cases.jsonl"))
    ap.add_argument("--cases", default=str(ROOT / "tests" / "grader_cases.jsonl"))
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    with Grader(workers=args.workers, timeout=args.timeout) as grader:
        for name, path, key in (("peer cases", args.peer, "source"), ("our cases", args.cases, "why")):
            if not Path(path).exists():
                print(f"\n== {name}: {path} not found, skipped")
                continue
            cases = load(path)
            t = time.time()
            verdicts = grader.map([(c["gold"], c["pred"]) for c in cases])
            report(name, cases, verdicts, key if key == "source" else "_none")
            print(f"  ({time.time() - t:.1f}s)")


if __name__ == "__main__":
    main()
