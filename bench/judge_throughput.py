"""Judgments per second of the project's judge against a one-process, no-dedup baseline, in the same run.

    python3 bench/judge_throughput.py [--problems 40] [--per-problem 32] [--workers N]

Both sides judge the same realistic gpt-oss outputs (bench/make_synthetic.py: long analysis channel, boxed final
answer in several spellings, some wrong, some truncated), 32 answers per problem:
- baseline: what a straightforward judge does, one record after another in one process: extract the last box,
  math-verify parse of gold and answer, verify;
- project: the judge mode's path: extract the answer, then reasonlite.grader.Grader (a process pool, one verdict per
  distinct (gold, answer) pair, string-equal answers settled without a worker).
It prints both rates, their ratio and how often the two verdicts agree. The pool's start-up is timed separately:
on a real run of millions of records it is paid once.
"""
import argparse
import random
import time


from make_synthetic import gold_and_variants, record  # bench/ is on the path (the script's folder)
from reasonlite.grader import Grader, extract_answer


def make_records(problems, per_problem, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(problems):
        gold, right, wrong = gold_and_variants(rng, i)
        info = {"prompt": f"Problem {i}", "expected_answer": gold, "index": f"b:{i}"}
        p_right = rng.choice([0.9, 0.7, 0.4])
        for j in range(per_problem):
            r = rng.random()
            box = None if r < 0.05 else rng.choice(right) if r < 0.05 + p_right else rng.choice(wrong)
            out.append(record(rng, info, j, box, "<prompt>"))
    return out


def baseline(records):
    from math_verify import parse, verify
    verdicts = []
    for rec in records:
        pred = extract_answer(rec["answer"])
        if pred is None:
            verdicts.append(False)
            continue
        try:
            verdicts.append(bool(verify(parse("\\boxed{" + rec["info"]["expected_answer"] + "}"),
                                        parse("\\boxed{" + pred + "}"))))
        except Exception:
            verdicts.append(None)
    return verdicts


def project(records, grader):
    futures = []
    for rec in records:
        pred = extract_answer(rec["answer"])
        futures.append(None if pred is None else grader.submit(rec["info"]["expected_answer"], pred))
    return [False if f is None else f.result() for f in futures]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--per-problem", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    records = make_records(args.problems, args.per_problem)
    print(f"{len(records)} gpt-oss records, {args.per_problem} answers per problem")

    t = time.perf_counter()
    base = baseline(records)
    t_base = time.perf_counter() - t

    t = time.perf_counter()
    grader = Grader(workers=args.workers)
    grader.start()  # start the workers and wait until they have loaded math-verify
    t_start = time.perf_counter() - t
    t = time.perf_counter()
    ours = project(records, grader)
    t_ours = time.perf_counter() - t
    computed = grader.computed
    grader.close()

    agree = sum(a == b for a, b in zip(base, ours)) / len(records)
    print(f"baseline (1 process, no dedup): {len(records) / t_base:9.1f} judgments/s  ({t_base:.2f} s)")
    print(f"project  (pool + dedup):        {len(records) / t_ours:9.1f} judgments/s  ({t_ours:.2f} s, "
          f"{computed} checks computed; pool start {t_start:.2f} s)")
    print(f"ratio project/baseline: {t_base / t_ours:.1f}x; verdicts agree on {agree:.1%}")


if __name__ == "__main__":
    main()
