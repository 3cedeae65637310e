"""Results of evaluation runs: the seed's table, how sure each number is, two runs compared, truncation, pictures.

    cd eval && python3 report.py result/<run>            # the seed's table, pass_at_k.png, response_lengths.png
    python3 report.py result/<run> --ci                  # cells as `75.2 ± 2.1` (± one standard error), 95% intervals
    python3 report.py result/<run> --truncation          # + the share cut at max_tokens and avg@n of finished samples
    python3 report.py --diff result/<a> result/<b>       # B - A per dataset: paired intervals, flipped problems
    python3 report.py --audit result/<run>               # re-grade: our grader against math-verify alone

The table is Markdown, one row per model (and sampling settings), in the seed's column order:
Model | AMC23 avg@16 | AMC23 pass@8 | AIME25 avg@16 | AIME25 pass@8 | AIME24 avg@16 | AIME24 pass@8, then any other
dataset that was run. avg@n is pass@1 and the second column of a dataset is pass@(n/2), named after the n that was
run; a cell no task filled is "-". Numbers are read from each task's metrics.json and rounded as result.log prints
them. Tasks without metrics.json (still running, or failed) are left out with a note on stderr.

Intervals come from reasonlite/evaluation/stats.py (a bootstrap over problems and over the samples within each
problem; the footer says which and how many resamples). A dataset where more than --max-truncated of the samples
were cut at max_tokens gets a warning line: their answers count as wrong, so the score partly measures the limit.
--diff pairs the tasks of two runs by dataset and refuses runs whose problems differ; it prints what differs in
their manifest.json first, then per dataset the difference of each metric with a paired bootstrap interval, the
share of resamples where B is ahead, and the problems that flipped (solved = more than half the samples correct).
"""
import argparse
import json
import re
import sys
from pathlib import Path

from reasonlite import manifest as manifests
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.evaluation import plots
from reasonlite.evaluation.benchmarks import DATASETS, PROBLEM_KEYS
from reasonlite.evaluation.metrics import ks_for, percent
from reasonlite.evaluation.stats import LEVELS, RESAMPLES, SEED, Bootstrap, Outcomes, within_share
from reasonlite.jsonl import DataError, read_records

SEED_DATASETS = ["AMC23", "AIME25", "AIME24"]
SEED_N = 16
# Settings that make two tasks of one model different rows (a temperature sweep is two rows, not one).
ROW_KEYS = ("chat_template_name", "system_prompt_name", "prefix_prompt_name", "suffix_prompt_name", "bf16", "fp16",
            "max_model_len", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")
# Keys the evaluator adds to a dataset row in generation.jsonl (evaluate.score); a problem column of the same name
# was overwritten by them.
OWN_KEYS = {"idx", "prompt", "prompt_length", "gold", "response", "response_length", "finish_reason", "sample_seed",
            "pred", "correct"}
MAX_TRUNCATED = 0.10
COVERS = ("The interval covers which problems the benchmark holds and which samples the model drew, for this model "
          "and these settings; not grader errors, the prompt or template, hardware nondeterminism or other "
          "benchmarks.")


# ---- reading task folders -----------------------------------------------------------------------------------------
def load_tasks(folder):
    """[{"dir", "config", "metrics"}] of the finished task folders under folder (or folder itself)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    dirs = [folder] if (folder / "config.json").exists() else sorted(p for p in folder.iterdir() if p.is_dir())
    tasks = []
    for d in dirs:
        if not (d / "config.json").exists():
            continue
        if not (d / "metrics.json").exists():
            print(f"note: {d}: no metrics.json (unfinished or failed task); left out", file=sys.stderr)
            continue
        try:
            config = json.loads((d / "config.json").read_text(encoding="utf-8"))
            metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{d}: unreadable config.json or metrics.json ({e})") from None
        tasks.append({"dir": d, "config": config, "metrics": metrics})
    if not tasks:
        raise ValueError(f"{folder}: no finished task folder (one with config.json and metrics.json)")
    return tasks


def problem_text(rec, config):
    """The problem's text from a generation.jsonl record, or None where the evaluator's own keys replaced it."""
    key = config.get("problem_key") or DATASETS.get(config.get("data_id"), {}).get("problem")
    for k in [key, *PROBLEM_KEYS] if key else PROBLEM_KEYS:
        if k in rec:
            return rec[k] if k not in OWN_KEYS else None
    return None


def generations(task):
    """The per-sample outcomes of a task from its generation.jsonl (cached on the task); responses are dropped."""
    if "gen" in task:
        return task["gen"]
    path = task["dir"] / "generation.jsonl"
    if not path.is_file():
        raise ValueError(f"{task['dir']}: no generation.jsonl")
    gen = {"ids": [], "gold": [], "text": [], "correct": [], "pred": [], "finish": [], "length": []}
    try:
        for lineno, rec in read_records(path):
            if "sample" in rec or not isinstance(rec.get("correct"), list) or "idx" not in rec:
                raise ValueError(f"{path}:{lineno}: not a scored problem of this evaluator (a sample of an unscored "
                                 "run, or a record without idx and correct); rerun the task to score it")
            n = len(rec["correct"])
            gen["ids"].append(rec["idx"])
            gen["gold"].append(rec.get("gold"))
            gen["text"].append(problem_text(rec, task["config"]))
            gen["correct"].append([bool(c) for c in rec["correct"]])
            gen["pred"].append(rec.get("pred") or [None] * n)
            gen["finish"].append(rec.get("finish_reason") or [None] * n)
            gen["length"].append(rec.get("response_length") or [None] * n)
    except DataError as e:
        raise ValueError(str(e)) from None
    if not gen["ids"]:
        raise ValueError(f"{path}: no problems")
    gen["outcomes"] = Outcomes.from_records(
        [{"idx": i, "correct": c, "pred": p} for i, c, p in zip(gen["ids"], gen["correct"], gen["pred"])])
    task["gen"] = gen
    return gen


def records_hash(task):
    """The problems hash of reasonlite.manifest, computed from generation.jsonl (for tasks without a manifest)."""
    gen = generations(task)
    return manifests.problems_hash(zip(gen["ids"], gen["text"], gen["gold"]))[0]


def truncation(task):
    """{"samples", "cut", "known", "finished", "finished_correct"}: cut = finish_reason "length" (at max_tokens)."""
    gen = generations(task)
    out = {"samples": 0, "cut": 0, "known": 0, "finished": 0, "finished_correct": 0}
    for reasons, correct in zip(gen["finish"], gen["correct"]):
        for reason, ok in zip(reasons, correct):
            out["samples"] += 1
            out["known"] += reason is not None
            if reason == "length":
                out["cut"] += 1
            else:
                out["finished"] += 1
                out["finished_correct"] += ok
    return out


def cut_share(task):
    """(cut, samples) from metrics.json's stats (no need to read generation.jsonl), else from the records."""
    stats = task["metrics"].get("stats") or {}
    if "truncated" in stats and "samples" in stats:
        return stats["truncated"], stats["samples"]
    try:
        t = truncation(task)
    except ValueError:  # no readable generation.jsonl: nothing to warn about
        return 0, 0
    return t["cut"], t["samples"]


# ---- the table ----------------------------------------------------------------------------------------------------
def assign_rows(tasks):
    """Set each task's "row" label: the model's name, plus the settings that set it apart from a same-named row."""
    def key(t):
        return (t["config"].get("base_model"),) + tuple(repr(t["config"].get(k)) for k in ROW_KEYS)

    by_label = {}
    for t in tasks:
        t["row_key"] = key(t)
        by_label.setdefault(Path(str(t["config"].get("base_model"))).name, {})[t["row_key"]] = t["config"]
    for t in tasks:
        label = Path(str(t["config"].get("base_model"))).name
        variants = by_label[label]
        if len(variants) > 1:
            configs = list(variants.values())
            differ = [k for k in ("base_model",) + ROW_KEYS if len({repr(c.get(k)) for c in configs}) > 1]
            label += " (" + ", ".join(f"{k}={t['config'].get(k)}" for k in differ) + ")"
        t["row"] = label


def _cell(task, metric, ci):
    value = task["metrics"]["overall"].get(metric)
    if value is None:
        return "-"
    est = (task.get("estimates") or {}).get(metric) if ci else None
    return percent(value) + (f" ± {est.se * 100:.1f}" if est else "")


def build_table(tasks, ci=False, show_truncation=False):
    """(header, rows, datasets) of the Markdown table; cells are strings."""
    assign_rows(tasks)
    extra = []
    for t in tasks:
        d = t["metrics"]["dataset"]
        if d not in SEED_DATASETS and d not in extra:
            extra.append(d)
    datasets = SEED_DATASETS + extra
    rows = list(dict.fromkeys(t["row"] for t in tasks))
    cell = {}
    for t in tasks:  # a later folder of the same row and dataset replaces an earlier one
        if (t["row"], t["metrics"]["dataset"]) in cell:
            print(f"note: {t['dir']} repeats row {t['row']!r} on {t['metrics']['dataset']}; the table shows it",
                  file=sys.stderr)
        cell[(t["row"], t["metrics"]["dataset"])] = t
    header = ["Model"]
    table = {r: [r] for r in rows}
    for d in datasets:
        ns = sorted({t["metrics"]["n"] for (r, dd), t in cell.items() if dd == d})
        one_n = ns[0] if len(ns) == 1 else (SEED_N if not ns else None)
        header += [f"{d} avg@{one_n}", f"{d} pass@{one_n // 2}"] if one_n else [f"{d} avg@n", f"{d} pass@n/2"]
        if show_truncation and ns:
            header += [f"{d} cut", f"{d} avg@{one_n or 'n'} finished"]
        for r in rows:
            t = cell.get((r, d))
            if t is None:
                table[r] += ["-", "-"] + (["-", "-"] if show_truncation and ns else [])
                continue
            n = t["metrics"]["n"]
            tag = "" if one_n else f" (n={n})"
            half = _cell(t, f"pass@{n // 2}", ci) if n >= 2 else "-"
            table[r] += [_cell(t, "pass@1", ci) + tag, half + (tag if half != "-" else "")]
            if show_truncation:
                tr = truncation(t)
                cut = f"{100 * tr['cut'] / tr['samples']:.1f}%" if tr["known"] else "?"
                fin = percent(tr["finished_correct"] / tr["finished"]) if tr["finished"] else "-"
                table[r] += [cut, fin]
    return header, [table[r] for r in rows], datasets


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _names(task):
    """The pass@k and maj@k metrics of a task, in metrics.json's order; any other kind has no interval here."""
    return [m for m in task["metrics"]["overall"] if re.fullmatch(r"(pass|maj)@\d+", m)]


def interval_lines(tasks, boot):
    """The footer of --ci: what was resampled, then every metric of every task with its 95% interval."""
    lines = [f"± is one standard error; 95% intervals below. {boot.describe().capitalize()}. {COVERS}"]
    for t in tasks:
        m, est = t["metrics"], t["estimates"]
        cells = [f"{'avg@' + str(m['n']) if k == 'pass@1' else k} {percent(e.point)} ± {e.se * 100:.1f} "
                 f"[{percent(e.lo)}, {percent(e.hi)}]" for k, e in est.items()]
        share = within_share(generations(t)["outcomes"])
        why = (f"; sampling within problems is {share:.0%} of the variance of avg@{m['n']} (more samples per problem "
               "shrink only that part)" if share is not None else "")
        lines.append(f"- {t['row']} on {m['dataset']} ({m['num_problems']} problems x {m['n']}): "
                     + ", ".join(cells) + why)
    return lines


def truncation_warnings(tasks, limit):
    lines = []
    for t in tasks:
        cut, samples = cut_share(t)
        if samples and cut / samples > limit:
            mt = t["config"].get("max_tokens")
            lines.append(f"warning: {t['metrics']['dataset']} ({t['row']}): {cut} of {samples} samples "
                         f"({cut / samples:.0%}) were cut at max_tokens{f' ({mt})' if mt else ''}, more than "
                         f"{limit:.0%}; a cut sample has no answer and counts as wrong (see --truncation)")
    return lines


# ---- the pictures -------------------------------------------------------------------------------------------------
def draw(tasks, boot, png):
    series, panels = {}, []
    for t in tasks:
        m = t["metrics"]
        ks = [k for k in ks_for(m["n"]) if f"pass@{k}" in m["overall"]]
        try:
            out = generations(t)
        except ValueError as e:
            print(f"note: {e}; its plot has no band", file=sys.stderr)
            series.setdefault(m["dataset"], []).append((t["row"], ks, [m["overall"][f"pass@{k}"] for k in ks],
                                                        None, None))
            continue
        series.setdefault(m["dataset"], []).append((t["row"], ks, *boot.curve(out["outcomes"], ks)))
        groups = {"correct": [], "wrong": [], "cut at max_tokens": []}
        for lengths, reasons, correct in zip(out["length"], out["finish"], out["correct"]):
            for length, reason, ok in zip(lengths, reasons, correct):
                if length is not None:
                    kind = "cut at max_tokens" if reason == "length" else "correct" if ok else "wrong"
                    groups[kind].append(length)
        panels.append((f"{m['dataset']}: {t['row']}", groups))
    plots.pass_at_k(series, png)
    written = [png]
    if panels:
        written.append(png.with_name("response_lengths.png"))
        plots.lengths(panels, written[-1])
    return written


# ---- two runs -----------------------------------------------------------------------------------------------------
def pair_tasks(folder_a, folder_b):
    """[(dataset, task of A, task of B)] for the datasets both runs hold; one task per dataset and run."""
    runs = []
    for name, folder in (("A", folder_a), ("B", folder_b)):
        by_dataset = {}
        for t in load_tasks(folder):
            by_dataset.setdefault(t["metrics"]["dataset"], []).append(t)
        for d, ts in by_dataset.items():
            if len(ts) > 1:
                names = ", ".join(t["dir"].name for t in ts)
                raise ValueError(f"{folder} ({name}) holds {len(ts)} tasks on {d} ({names}); pass the two task "
                                 "folders to compare instead")
        runs.append({d: ts[0] for d, ts in by_dataset.items()})
    a, b = runs
    common = [d for d in a if d in b]
    if not common:
        raise ValueError(f"{folder_a} and {folder_b} have no dataset in common (A: {', '.join(a)}; B: {', '.join(b)})")
    for name, run, other in (("A", a, b), ("B", b, a)):
        only = [d for d in run if d not in other]
        if only:
            print(f"note: only {name} has {', '.join(only)}; left out", file=sys.stderr)
    return [(d, a[d], b[d]) for d in common]


def check_same_problems(dataset, ta, tb):
    """Refuse, in one line, a comparison of tasks whose problems differ."""
    for t in (ta, tb):
        t["manifest"] = manifests.read_manifest(t["dir"])
    ga, gb = generations(ta), generations(tb)
    # Both manifests hash the problems as eval.py read them; else both hashes come from the records, alike.
    use_manifest = all(t["manifest"] and t["manifest"].get("dataset", {}).get("problems_hash") for t in (ta, tb))
    ha, hb = (t["manifest"]["dataset"]["problems_hash"] if use_manifest else records_hash(t) for t in (ta, tb))
    same_records = sorted(zip(ga["ids"], ga["gold"])) == sorted(zip(gb["ids"], gb["gold"]))
    if ha != hb or not same_records:
        raise ValueError(f"{dataset}: A ({ta['dir']}) and B ({tb['dir']}) hold different problems ({len(ga['ids'])} vs "
                         f"{len(gb['ids'])} problems, problems hash {ha[:12]} vs {hb[:12]}); a paired comparison "
                         "needs the same problems: rerun one with the other's data and start_idx/end_idx")
    return ha


def manifest_lines(pairs):
    """What differs between the runs' manifests (config.json where a task has none), merged over datasets."""
    found, notes = {}, []
    for d, ta, tb in pairs:
        ma, mb = ta["manifest"], tb["manifest"]
        if ma is None or mb is None:
            missing = " and ".join(n for n, m in (("A", ma), ("B", mb)) if m is None)
            notes.append(f"{d}: no manifest.json in {missing} (made before manifests); config.json compared instead")
            ma, mb = {"config": ta["config"]}, {"config": tb["config"]}
        for key, va, vb in manifests.differences(ma, mb):
            found.setdefault((key, manifests.show_change(va, vb)), []).append(d)
    lines = [f"  {key}: {change}" + ("" if len(ds) == len(pairs) else f"  ({', '.join(ds)})")
             for (key, change), ds in found.items()]
    return notes + (lines or ["  nothing (apart from " + ", ".join(manifests.UNINFORMATIVE) + ")"])


def flips(ga, gb, limit=10):
    """Lines naming the problems solved (more than half the samples correct) by one run and not the other."""
    row_b = {i: k for k, i in enumerate(gb["ids"])}
    only = {"B": [], "A": []}
    for k, i in enumerate(ga["ids"]):
        ca, cb = ga["correct"][k], gb["correct"][row_b[i]]
        sa, sb = sum(ca) * 2 > len(ca), sum(cb) * 2 > len(cb)
        if sa != sb:
            only["B" if sb else "A"].append(f"{i} ({sum(ca)}/{len(ca)} -> {sum(cb)}/{len(cb)})")
    lines = [(f"flipped: {len(only['A']) + len(only['B'])} of {len(ga['ids'])} problems "
              "(solved = more than half of its samples correct; correct A -> B)")]
    for name in ("B", "A"):
        items = only[name]
        shown = ", ".join(items[:limit]) + (f", ... and {len(items) - limit} more" if len(items) > limit else "")
        lines.append(f"  solved by {name} only: {shown or 'none'}")
    return lines


def _signed(x):
    return f"{round(x * 100, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0" from a difference that is zero up to rounding


def diff(args, boot, out=print):
    pairs = pair_tasks(*args.diff)
    hashes = {d: check_same_problems(d, ta, tb) for d, ta, tb in pairs}
    out(f"A: {args.diff[0]}\nB: {args.diff[1]}\n")
    out("What differs (manifest.json, A -> B):")
    for line in manifest_lines(pairs):
        out(line)
    panels = []
    for d, ta, tb in pairs:
        ga, gb = generations(ta), generations(tb)
        a, b = ga["outcomes"], gb["outcomes"].take(ga["ids"])
        names = [k for k in _names(ta) if k in set(_names(tb))]
        result = boot.paired(a, b, names)
        na, nb = ta["metrics"]["n"], tb["metrics"]["n"]
        out(f"\n{d}: {len(ga['ids'])} problems (problems hash {hashes[d][:12]}), n = {na} (A) and {nb} (B)")
        rows = []
        for k in names:
            r = result[k]
            label = (f"avg@{na}" if na == nb else "avg (pass@1)") if k == "pass@1" else k
            rows.append([label, percent(boot.point(a, k)), percent(boot.point(b, k)), _signed(r.point),
                         f"[{_signed(r.lo)}, {_signed(r.hi)}]", f"{r.b_better:.0%}"])
        out(markdown(["metric", "A", "B", "B - A", "95% interval", "B > A in"], rows))
        for line in flips(ga, gb):
            out(line)
        panels.append((d, [(row[0], result[k].point, result[k].lo, result[k].hi) for row, k in zip(rows, names)]))
    out(f"\nPaired {boot.describe()}, the same problems drawn for A and B; the interval is the 2.5-97.5 percentiles "
        f"of B - A over the resamples and `B > A in` the share of resamples where B is ahead. {COVERS}")
    png = Path(args.png) if args.png else Path(args.diff[1]) / f"diff_vs_{Path(args.diff[0]).name}.png"
    plots.differences(panels, png)
    out(f"difference plot: {png}")


# ---- the command --------------------------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a run folder of start.py (result/<timestamp>) or one task folder")
    parser.add_argument("--ci", action="store_true", help="cells as `75.2 ± 2.1` (± one standard error) and every "
                        "metric's 95%% interval under the table")
    parser.add_argument("--truncation", action="store_true", help="add the share of samples cut at max_tokens and "
                        "avg@n among the samples that finished")
    parser.add_argument("--max-truncated", type=float, default=MAX_TRUNCATED, metavar="SHARE",
                        help="warn about a dataset with more than this share cut at max_tokens (default %(default)s)")
    parser.add_argument("--diff", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two runs (or task folders) "
                        "dataset by dataset, B - A")
    parser.add_argument("--audit", metavar="RUN", help="re-grade every sample with math-verify alone and with this "
                        "project's grader; list where they disagree")
    parser.add_argument("--examples", type=int, default=3, help="--audit: examples shown per kind of disagreement")
    parser.add_argument("--workers", type=int, default=2, help="--audit: worker processes per grader (default 2)")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="bootstrap seed (default %(default)s)")
    parser.add_argument("--resample", choices=LEVELS, default=LEVELS[0],
                        help="what the bootstrap draws again (default %(default)s)")
    parser.add_argument("--png", default=None, help="where to save the pass@k plot (default: <folder>/pass_at_k.png; "
                        "response_lengths.png goes beside it) or, with --diff, the difference plot")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        modes = [m for m, given in (("folder", args.folder), ("--diff", args.diff), ("--audit", args.audit)) if given]
        if len(modes) != 1:
            raise ValueError("give one of: a run folder, --diff RUN_A RUN_B, --audit RUN")
        if not 0 <= args.max_truncated <= 1:
            raise ValueError(f"--max-truncated must be a share in [0, 1], got {args.max_truncated}")
        boot = Bootstrap(args.resamples, args.seed, args.resample)
        if args.diff:
            diff(args, boot)
        elif args.audit:
            from reasonlite.evaluation.audit import audit
            audit(load_tasks(args.audit), examples=args.examples, workers=args.workers)
        else:
            report(args, boot)


def report(args, boot, out=print):
    tasks = load_tasks(args.folder)
    if args.ci:
        for t in tasks:
            t["estimates"] = boot.estimate(generations(t)["outcomes"], _names(t))
    header, rows, _ = build_table(tasks, ci=args.ci, show_truncation=args.truncation)
    out(markdown(header, rows))
    out("")
    if args.ci:
        for line in interval_lines(tasks, boot):
            out(line)
        out("")
    for line in truncation_warnings(tasks, args.max_truncated):
        out(line)
    for t in tasks:
        m = t["metrics"]
        out(f"- {t['dir'].name}: {m['dataset']}, {m['num_problems']} problems x {m['n']} samples -> {t['row']}")
    png = Path(args.png) if args.png else Path(args.folder) / "pass_at_k.png"
    written = draw(tasks, boot, png)
    out(f"pass@k plot: {written[0]}" + (f"; response lengths: {written[1]}" if len(written) > 1 else ""))
