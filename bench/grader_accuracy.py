"""Balanced accuracy of reasonlite.grader on the peer equivalence cases, on our own cases and on the generated
notation families.

    .venv/bin/python bench/grader_accuracy.py [PEER.jsonl] [--cases tests/grader_cases.jsonl] [--workers 2]
        [--timeout 10] [--families 25] [--seed 1729] [--math-verify-alone]

PEER.jsonl defaults to ../shared/graders/peer_equiv_cases.jsonl (relative to the repository root). For each file it
prints per-source and overall balanced accuracy, TPR (true pairs judged equal) and TNR (unequal pairs judged
unequal), then lists every misgraded case. A verdict of None (timeout) counts as wrong for either class.

The families are tests/test_grader_families.py's seeded generator (one value in many notations, and its near
misses), `--families` values per family (0 skips them). At the end a markdown table gives, per suite and per
family, the share of equal pairs judged equal and of unequal pairs judged unequal; with --math-verify-alone it adds
the same two shares for math-verify alone, as the evaluator's audit runs it (verify(parse("\\boxed{gold}"),
parse(output)) in worker processes, a timeout counting as wrong).
"""
import argparse
import importlib.util
import json
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from reasonlite.grader import Grader


def load_families():
    """tests/test_grader_families.py as a module (the generator lives beside the test that holds the bar)."""
    spec = importlib.util.spec_from_file_location("grader_families", ROOT / "tests" / "test_grader_families.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    ap.add_argument("--families", type=int, default=25, help="values per generated family (0: skip the families)")
    ap.add_argument("--seed", type=int, default=1729, help="the families' seed")
    ap.add_argument("--math-verify-alone", action="store_true", help="also grade every suite with math-verify alone")
    args = ap.parse_args()
    summary = []  # (suite, equal pairs, judged equal, unequal pairs, judged unequal[, the same two for math-verify])
    mv = None
    if args.math_verify_alone:
        from reasonlite.evaluation.audit import MathVerifyPool
        mv = MathVerifyPool(workers=args.workers or 2, timeout=args.timeout)

    def alone(pairs, labels):
        """(TPR, TNR) of math-verify alone on the pairs, or () without --math-verify-alone."""
        if mv is None:
            return ()
        futures = [mv.submit(g, p) for g, p in pairs]
        _, tpr, tnr, _, _ = rates([(lab, mv.result(f)[0]) for lab, f in zip(labels, futures)])
        return tpr, tnr
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
            _, tpr, tnr, npos, nneg = rates([(c["equal"], v) for c, v in zip(cases, verdicts)])
            summary.append((f"{name} ({Path(path).name})", npos, tpr, nneg, tnr,
                            *alone([(c["gold"], c["pred"]) for c in cases], [c["equal"] for c in cases])))
        if args.families > 0:
            fam = load_families()
            rows = fam.cases(args.families, seed=args.seed)
            t = time.time()
            verdicts = grader.map([(r["gold"], r["pred"]) for r in rows])
            print(f"\n== generated families: {len(rows)} cases, {args.families} values per family, seed {args.seed} "
                  f"({time.time() - t:.1f}s)")
            for r, v in zip(rows, verdicts):
                if v is not r["equal"]:
                    print(f"  MISGRADED {r['family']}: label={r['equal']} got={v} gold={r['gold'][:80]!r} "
                          f"pred={r['pred'][-120:]!r}")
            by_family = {}
            if mv is not None:
                for f in [*fam.FAMILIES, "all families"]:
                    sel = [r for r in rows if f in (r["family"], "all families")]
                    by_family[f] = alone([(r["gold"], r["pred"]) for r in sel], [r["equal"] for r in sel])
            summary += [(f"family: {f}" if f != "all families" else "**all generated families**", n, tpr, m, tnr,
                         *by_family.get(f, ())) for f, n, tpr, m, tnr in fam.accuracy_table(rows, verdicts)]
    if mv is not None:
        mv.close()
    extra = " math-verify alone: equal | math-verify alone: unequal |" if mv is not None else ""
    print(f"\n| suite | equal pairs | judged equal (TPR) | unequal pairs | judged unequal (TNR) |{extra}")
    print("|---|---:|---:|---:|---:|" + "---:|---:|" * (mv is not None))
    for suite, n, tpr, m, tnr, *mv_rates in summary:
        print(f"| {suite} | {n} | {tpr:.3f} | {m} | {tnr:.3f} |" + "".join(f" {x:.3f} |" for x in mv_rates))


if __name__ == "__main__":
    main()
