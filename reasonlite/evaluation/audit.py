"""Re-grade an evaluation run two ways, sample by sample: this project's grader, and math-verify alone.

    cd eval && python3 report.py --audit result/<run> [--examples 3]

math-verify alone is how many evaluators grade: verify(parse(gold), parse(output)) on the whole output with
math-verify's default extraction (the last \\boxed{}, else the last expression it finds); the gold answer is parsed
as \\boxed{gold}, since a bare gold parses badly (`2\\sqrt{2}` as 2). This project's grader (reasonlite/grader.py)
first reads the final answer (the gpt-oss final channel, or what follows </think>: a box inside unfinished thinking
is no answer), then applies the normalizations of reasonlite/equivalence.py. Where the two disagree, the score
depends on the grader and not only on the model; the audit counts both kinds of disagreement per task, shows a few
of each, and prints avg@n under each grader. It also counts the verdicts stored in generation.jsonl that today's
grader changes (a run graded by an older version).

Both graders run in worker processes with a timeout per check: math-verify's own timeouts use signal.alarm, which
works only in a process's main thread, and sympy can hang on inputs like 5^{5^{5^{5}}}. A check past its timeout is
"undecided" and counted apart.
"""
import json
import sys

from reasonlite.grader import Grader, extract_answer

TIMEOUT = 20.0  # seconds per math-verify check: parse and verify have 5 s alarms each, plus the import on first use
KINDS = (("ours_only", "ours correct, math-verify alone wrong"), ("mv_only", "math-verify alone correct, ours wrong"))


def math_verify_alone(gold, output):
    """(verdict, what math-verify extracted) in a worker process; the extracted text, never str() of a sympy object
    (printing a parsed power tower can hang)."""
    from math_verify import parse, verify
    pred = parse(output)
    found = next((p for p in reversed(pred) if isinstance(p, str)), None)
    return bool(verify(parse("\\boxed{" + gold + "}"), pred)), found


class MathVerifyPool:
    """math_verify_alone in a pebble ProcessPool, each check with a hard timeout; each distinct pair checked once."""

    def __init__(self, workers=2, timeout=TIMEOUT):
        import pebble
        self.pool = pebble.ProcessPool(max_workers=workers)
        self.timeout = timeout
        self.futures = {}

    def submit(self, gold, output):
        key = (gold, output)
        if key not in self.futures:
            self.futures[key] = self.pool.schedule(math_verify_alone, args=key, timeout=self.timeout)
        return self.futures[key]

    @staticmethod
    def result(future):
        try:
            return future.result()
        except BaseException:  # timeout (the worker was killed), a crash, an error inside math-verify
            return None, None

    def close(self):
        self.pool.stop()
        self.pool.join()


def _clip(text, width=80):
    text = "" if text is None else str(text).replace("\n", "\\n")
    return text if len(text) <= width else "..." + text[-width:]


def audit_task(task, grader, mv):
    """{"counts": {...}, "examples": {kind: [...]}, "avg": {"ours", "mv"}} of one task folder."""
    from reasonlite.jsonl import read_records
    path = task["dir"] / "generation.jsonl"
    pending = []
    for _, rec in read_records(path):
        gold = str(rec["gold"])
        for i, text in enumerate(rec["response"]):
            stored = rec["correct"][i] if i < len(rec.get("correct") or []) else None
            pending.append((rec["idx"], i, gold, text, stored, grader.submit(gold, text), mv.submit(gold, text)))
    counts = {"samples": 0, "both_correct": 0, "both_wrong": 0, "ours_only": 0, "mv_only": 0, "ours_undecided": 0,
              "mv_undecided": 0, "stored_changed": 0, "ours_correct": 0, "mv_correct": 0}
    examples = {"ours_only": [], "mv_only": []}
    for idx, i, gold, text, stored, f_ours, f_mv in pending:
        ours = f_ours.result()
        theirs, found = MathVerifyPool.result(f_mv)
        counts["samples"] += 1
        counts["ours_correct"] += ours is True
        counts["mv_correct"] += theirs is True
        if stored is not None and ours is not None and bool(stored) != ours:
            counts["stored_changed"] += 1
        if ours is None or theirs is None:
            counts["ours_undecided"] += ours is None
            counts["mv_undecided"] += theirs is None
            continue
        kind = ("both_correct" if ours and theirs else "both_wrong" if not (ours or theirs)
                else "ours_only" if ours else "mv_only")
        counts[kind] += 1
        if kind in examples:
            examples[kind].append({"idx": idx, "sample": i, "gold": gold, "ours": extract_answer(text),
                                   "math_verify": found, "tail": text[-120:]})
    return {"counts": counts, "examples": examples}


def audit(tasks, examples=3, workers=2, out=print):
    """Audit every task; prints a block per task and returns {task folder: result}."""
    results = {}
    grader, mv = Grader(workers=workers), MathVerifyPool(workers=workers)
    try:
        for t in tasks:
            m = t["metrics"]
            print(f"auditing {t['dir']} ...", file=sys.stderr)
            r = results[str(t["dir"])] = audit_task(t, grader, mv)
            c = r["counts"]
            decided = c["samples"] - max(c["ours_undecided"], c["mv_undecided"])
            out(f"{m['dataset']} ({t['dir'].name}): {c['samples']} samples")
            out(f"  avg@{m['n']}: {100 * c['ours_correct'] / c['samples']:.1f} by our grader, "
                f"{100 * c['mv_correct'] / c['samples']:.1f} by math-verify alone")
            out(f"  agree: {c['both_correct'] + c['both_wrong']} of {decided} decided by both "
                f"({c['both_correct']} correct, {c['both_wrong']} wrong)")
            for kind, words in KINDS:
                out(f"  {words}: {c[kind]}")
            out(f"  undecided (a check timed out): ours {c['ours_undecided']}, math-verify {c['mv_undecided']}")
            out(f"  verdicts in generation.jsonl that today's grader changes: {c['stored_changed']}")
            for kind, words in KINDS:
                for e in r["examples"][kind][:examples]:
                    out(f"    [{words}] problem {e['idx']} sample {e['sample']}: gold {json.dumps(e['gold'])}, "
                        f"ours read {json.dumps(e['ours'])}, math-verify read {json.dumps(e['math_verify'])}; "
                        f"output ends {json.dumps(_clip(e['tail']))}")
    finally:
        grader.close()
        mv.close()
    return results
