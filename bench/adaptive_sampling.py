"""Adaptive vs fixed sampling at the same token budget -- on a SIMULATED teacher, not a model and not real data.

    python3 bench/adaptive_sampling.py                        # 1000 problems, three length models (about 5 min)
    python3 bench/adaptive_sampling.py --problems 300 --lengths mild --policies 4:32   # quicker
    python3 bench/adaptive_sampling.py --share datas/<exp>/answer_judge/<run>      # which model a real run is nearest
    python3 bench/adaptive_sampling.py --from-run datas/<exp>/answer_judge/<run>   # a real run's own problems

*** THIS IS A SIMULATION. *** The teacher is bench/stub_teacher.py: each problem's chance of a correct answer is
drawn from a made-up but realistic difficulty spread (most problems easy, a long hard tail) and its answers get
longer as it gets harder, by one of three made-up length models (steep, mild, flat). Every number below depends on
those models; it says what the loop does with such a spread, not what gpt-oss will do on your data.

What runs is the real code: reasonlite.adaptive.Adaptive (rounds, the grader's labels, the closing rules, records
and stats files written to a temporary folder), with the simulated teacher plugged in where the servers would be.
Fixed sampling is the same loop with first_round = max_answers = 32 and a target it never reaches: one round of 32
answers per problem, which is what `sampling: fixed` with num_answer 32 draws. Each adaptive policy is
min_correct:target_correct[:give_up_after] (16:16 is one flat target of 16; 4:32 a target growing with the
estimated failure rate from 4 to 32; 4:32:32 that, closing a problem with none correct of 32), and its max_answers
is the largest multiple of round_size whose run spends no more tokens than the fixed run (bisection, each step a
full run), so every column compares at the same token budget.

Reported per run: tokens spent; correct answers per problem in the hardest quartile (the 25% of problems with the
lowest true chance of a correct answer, which only the simulation knows); problems of that quartile, and of all,
left with no correct answer; tokens per retained answer (retained: judged correct and not cut), also when the
training data keeps at most 16 answers per problem (the conversion's --max-per-problem), as a training set rarely
wants 32 answers to an easy problem. The ceiling line is what ANY allocation that treats the quartile's problems
alike could give it at this budget: every token spent on that quartile alone.

--from-run replaces the made-up spread and length models by a real judged run's problems (a pilot of a few
thousand problems at 32 answers, say): each simulated problem has one real problem's pass rate and mean answer
length, so the table is that teacher's on that data, under two assumptions said in the report: answers are
independent draws at the measured rate, and a wrong answer is 1.3x as long as a right one.

Why the length model decides it: the hardest quartile's share of a fixed run's tokens is all adaptive sampling can
move there from elsewhere. --share reads a real judged run's problems*.jsonl (pass_rate, mean_answer_tokens or, for
a fixed run, mean_answer_chars) and prints that share and ceiling, to say which table your teacher is nearest.
"""
import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from stub_teacher import LENGTHS, SimulatedTeacher, make_problems  # bench/ is on the path (the script's folder)

from reasonlite import config, problem_stats
from reasonlite.adaptive import Adaptive

BANNER = "SIMULATION: a stub teacher with a made-up difficulty spread (bench/stub_teacher.py), not a model"
BANNER_RUN = ("SIMULATION: a stub teacher (bench/stub_teacher.py) with a real run's measured pass rates and answer "
              "lengths, not a model")


def run_loop(work, problems, teacher_kw, first_round, round_size, policy, max_answers, seed):
    """One real adaptive run over the problems; its per-problem results read back from the files it wrote."""
    base = Path(tempfile.mkdtemp(dir=work))
    with open(base / "info.jsonl", "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in problems)
    cfg = config.parse(f"model_path: simulated/gpt-oss\nprompt_format: harmony\nbase_data_path: {base}\n"
                       f"sampling: adaptive\nfirst_round: {first_round}\nround_size: {round_size}\n"
                       f"min_correct: {policy[0]}\ntarget_correct: {policy[1]}\nmax_answers: {max_answers}\n"
                       f"give_up_after: {policy[2] if len(policy) > 2 else 'null'}\n"
                       "judge_backend: rule\n"
                       f"max_tokens: 30000\n", "bench")
    teacher = SimulatedTeacher(seed=seed, concurrency=512, **teacher_kw)
    final = Adaptive(config._check_pipeline(cfg), generator=teacher).run(0, 1, "run")
    tokens = {}
    for e in problem_stats.read_answer_stats(final.parent):
        p = e["index"].rsplit("_", 1)[0]
        tokens[p] = tokens.get(p, 0) + e["tokens"]
    rows = {r["index"]: {**r, "tokens": tokens.get(r["index"], 0)} for r in problem_stats.read_rows(final.parent)}
    shutil.rmtree(base)
    return rows


def measure(rows, hard, cap):
    hard_rows = [rows[k] for k in hard]
    spent = sum(r["tokens"] for r in rows.values())
    retained = sum(r["correct"] for r in rows.values())
    capped = sum(min(r["correct"], cap) for r in rows.values())
    return {"tokens": spent, "answers": sum(r["answers"] for r in rows.values()),
            "hard_correct": sum(r["correct"] for r in hard_rows) / len(hard_rows),
            "hard_answers": sum(r["answers"] for r in hard_rows) / len(hard_rows),
            "hard_zero": sum(r["correct"] == 0 for r in hard_rows), "all_zero": sum(r["correct"] == 0 for r in
                                                                                    rows.values()),
            "retained": retained, "per_retained": spent / max(retained, 1), "per_capped": spent / max(capped, 1),
            "hard_tokens": sum(r["tokens"] for r in hard_rows),
            "hard_tokens_per_answer": sum(r["tokens"] for r in hard_rows) / max(sum(r["answers"] for r in hard_rows),
                                                                                 1)}


def calibrate(work, problems, teacher_kw, args, policy, budget, log):
    """The largest max_answers (a multiple of round_size) whose run spends at most `budget` tokens."""
    step, lo, hi = args.round_size, 1, args.max_search // args.round_size
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        m = max(args.first_round, mid * step)
        rows = run_loop(work, problems, teacher_kw, args.first_round, step, policy, m, args.seed)
        spent = sum(r["tokens"] for r in rows.values())
        log(f"    {label(policy)}, max_answers {m}: {spent / 1e6:.1f}M tokens ({spent / budget:.3f} of fixed)")
        if spent <= budget:
            best, lo = (m, rows), mid + 1
        else:
            hi = mid - 1
    return best


def table(results, n_hard, fixed_n, cap):
    head = ["", f"fixed {fixed_n}"] + [f"{label(policy)}, M{m}" for policy, m, _ in results[1:]]
    m = [r for _, _, r in results]
    f = m[0]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name, fmt, key):
        lines.append(f"| {name} | " + " | ".join(fmt(x[key]) for x in m) + " |")
    row("tokens spent", lambda v: f"{v / 1e6:.1f}M ({v / f['tokens']:.2f})", "tokens")
    row("answers drawn", lambda v: f"{v}", "answers")
    row(f"correct per problem, hardest quartile ({n_hard})", lambda v: f"{v:.2f} ({v / f['hard_correct']:.2f}x)",
        "hard_correct")
    row("answers per problem, hardest quartile", lambda v: f"{v:.1f}", "hard_answers")
    row("hardest quartile with no correct answer", lambda v: f"{v}", "hard_zero")
    row("all problems with no correct answer", lambda v: f"{v}", "all_zero")
    row("retained answers (correct, not cut)", lambda v: f"{v}", "retained")
    row("tokens per retained answer", lambda v: f"{v:,.0f}", "per_retained")
    row(f"tokens per retained answer, at most {cap} per problem", lambda v: f"{v:,.0f}", "per_capped")
    return lines


def label(policy):
    least, target = policy[:2]
    name = f"flat target {target}" if least == target else f"target {least}..{target}"
    return name + (f", give up at 0/{policy[2]}" if len(policy) > 2 else "")


def hard_share(rows):
    """(share of the answer tokens spent on the hardest quartile by pass rate, its answers, all answers) of a run's
    problem lines; characters where the run recorded no tokens (a fixed run)."""
    size = []
    for r in rows:
        mean = r.get("mean_answer_tokens") or r.get("mean_answer_chars")
        if r.get("pass_rate") is not None and mean:
            size.append((r["pass_rate"], mean * r["answers"], r["answers"]))
    size.sort()
    hard = size[: len(size) // 4]
    return sum(x[1] for x in hard) / sum(x[1] for x in size), sum(x[2] for x in hard), sum(x[2] for x in size)


def share_report(folder):
    rows = list(problem_stats.read_rows(folder))
    if len(rows) < 4:
        raise SystemExit(f"{folder}: no problems*.jsonl lines with a pass rate (judge or judge_vote writes them)")
    share, hard_answers, answers = hard_share(rows)
    print(f"{folder}: {len(rows)} problems; the hardest quartile by pass rate drew {hard_answers / answers:.0%} of "
          f"the answers and {share:.0%} of the answer length. The simulation's models: steep 69%, mild 51%, flat "
          "28%, with 32 answers each.")
    if len({r["answers"] for r in rows}) == 1:  # a fixed run: the share is what adaptive sampling can move
        print(f"At the same budget, that quartile's answers could grow by {1 / share:.2f}x at most.")
    else:
        print("Its problems drew different numbers of answers (an adaptive run?): read a fixed run's share instead.")


def run_profile(folder, chars_per_token):
    """[(p, mean answer tokens)] of a real judged run's problems: p the Jeffreys mean (c + 1/2) / (n + 1) of its c
    correct of n judged answers, so a problem at 0 of 32 keeps a small chance, as it would on a rerun; the length in
    tokens, or in characters / chars_per_token for a fixed run, which records no tokens."""
    profile = []
    for r in problem_stats.read_rows(folder):
        judged = (r.get("answers") or 0) - (r.get("failed") or 0) - (r.get("undecided") or 0)
        mean = r.get("mean_answer_tokens") or (r.get("mean_answer_chars") or 0) / chars_per_token
        if r.get("pass_rate") is None or judged <= 0 or not mean:
            continue
        profile.append(((round(r["pass_rate"] * judged) + 0.5) / (judged + 1), mean))
    if len(profile) < 4:
        raise SystemExit(f"{folder}: fewer than 4 problems*.jsonl lines with a pass rate and a length (judge or "
                         "judge_vote writes them)")
    return profile


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", type=int, default=1000)
    p.add_argument("--fixed", type=int, default=32, help="answers per problem of the fixed run (the seed's 32)")
    p.add_argument("--first-round", type=int, default=4)
    p.add_argument("--round-size", type=int, default=4)
    p.add_argument("--policies", default="16:16,4:32,4:32:32",
                   help="adaptive policies min_correct:target_correct[:give_up_after] to compare, comma-separated")
    p.add_argument("--lengths", default="steep,mild,flat", help="length models, comma-separated: steep, mild, flat")
    p.add_argument("--max-search", type=int, default=512, help="largest max_answers the calibration tries")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the report (markdown) here")
    p.add_argument("--share", metavar="RUN_FOLDER", help="only print a real judged run's hardest-quartile share")
    p.add_argument("--from-run", metavar="RUN_FOLDER",
                   help="simulate the problems of a real judged run: their measured pass rates and answer lengths "
                        "instead of the made-up spread and length models (--problems and --lengths are ignored)")
    p.add_argument("--chars-per-token", type=float, default=4.0,
                   help="for --from-run on a fixed run, which records characters, not tokens (default 4)")
    args = p.parse_args()
    if args.share:
        return share_report(args.share)
    logging.disable(logging.WARNING)  # the loop's own summaries; the progress bars stay on stderr
    policies = [tuple(int(x) for x in item.split(":")) for item in args.policies.split(",")]
    if args.from_run:
        profile = run_profile(args.from_run, args.chars_per_token)
        models = [("run", {"profile": profile}, f"{args.from_run}: measured pass rates and answer lengths")]
        source = (f"{len(profile)} problems of {args.from_run}, each with its measured pass rate (Jeffreys mean) "
                  "and mean answer length; answers drawn independently at that rate, lengths log-normal (sigma "
                  "0.35) around that mean, a wrong answer 1.3x a correct one")
    else:
        models = [(name, {"lengths": name}, f"{name}: mean answer tokens {LENGTHS[name][0]} + {LENGTHS[name][1]} "
                   "(1 - p)^2") for name in args.lengths.split(",")]
        source = f"{args.problems} problems (bench/stub_teacher.py make_problems, seed {args.seed})"
    n = len(profile) if args.from_run else args.problems
    banner = BANNER_RUN if args.from_run else BANNER
    report = [f"**{banner}.**", "",
              f"{source}; fixed: {args.fixed} answers per problem; adaptive: first_round {args.first_round}, "
              f"round_size {args.round_size}, min_correct..target_correct as named, max_answers M calibrated to the "
              "fixed run's tokens; judge_backend rule; max_tokens 30000.", ""]
    print(banner)
    problems = make_problems(n, seed=args.seed)
    teacher = SimulatedTeacher(seed=args.seed, **models[0][1])
    by_difficulty = sorted(range(n), key=teacher.p_correct)
    hard = [problems[k]["index"] for k in by_difficulty[: n // 4]]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as work:
        for lengths, teacher_kw, model in models:
            print(f"\nanswer lengths: {lengths}")
            fixed_rows = run_loop(work, problems, teacher_kw, args.fixed, 1, (10 ** 9, 10 ** 9), args.fixed,
                                  args.seed)
            fixed = measure(fixed_rows, hard, 16)
            results = [(None, args.fixed, fixed)]
            for policy in policies:
                found = calibrate(work, problems, teacher_kw, args, policy, fixed["tokens"], print)
                if found is None:
                    print(f"    {label(policy)}: no max_answers fits the budget")
                    continue
                m, rows = found
                results.append((policy, m, measure(rows, hard, 16)))
            # Every token of the budget on the hardest quartile alone, at its own cost per answer:
            ceiling = fixed["tokens"] / len(hard) / fixed["hard_tokens_per_answer"]
            share = fixed["hard_tokens"] / fixed["tokens"]
            title = f"{model}; the hardest quartile takes {share:.0%} of the fixed run's tokens"
            lines = [f"#### {title}", ""] + table(results, len(hard), args.fixed, 16) + [
                "", f"Ceiling for any allocation treating the quartile's problems alike: {ceiling:.0f} answers per "
                    f"hardest-quartile problem ({ceiling / args.fixed:.2f}x the fixed {args.fixed}) if every token "
                    "went to that quartile."]
            print("\n".join(lines))
            report += lines + [""]
    report.append(f"One run of `python3 bench/adaptive_sampling.py` ({time.monotonic() - t0:.0f} s on this "
                  "project's 2-core CPU machine).")
    if args.out:
        Path(args.out).write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
