"""Print the seed's results table for a folder of evaluation results, and plot pass@k against k.

    cd eval && python3 report.py result/<timestamp>          # a run folder of start.py (or one task folder)
    python3 report.py result/<timestamp> --png plot.png      # default: <folder>/pass_at_k.png

The table is Markdown, one row per model (and sampling settings), in the seed's column order:
Model | AMC23 avg@16 | AMC23 pass@8 | AIME25 avg@16 | AIME25 pass@8 | AIME24 avg@16 | AIME24 pass@8, then any other
dataset that was run. avg@n is pass@1 and the second column of a dataset is pass@(n/2), named after the n that was
run; a cell no task filled is "-". Numbers are read from each task's metrics.json and rounded as result.log prints
them. Tasks without metrics.json (still running, or failed) are left out with a note on stderr.
"""
import argparse
import json
import sys
from pathlib import Path

from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.evaluation.metrics import percent

SEED_DATASETS = ["AMC23", "AIME25", "AIME24"]
SEED_N = 16
# Settings that make two tasks of one model different rows (a temperature sweep is two rows, not one).
ROW_KEYS = ("chat_template_name", "system_prompt_name", "prefix_prompt_name", "suffix_prompt_name", "bf16", "fp16",
            "max_model_len", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed")


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


def build_table(tasks):
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
        cell[(t["row"], t["metrics"]["dataset"])] = t["metrics"]
    header = ["Model"]
    table = {r: [r] for r in rows}
    for d in datasets:
        ns = sorted({m["n"] for (r, dd), m in cell.items() if dd == d})
        one_n = ns[0] if len(ns) == 1 else (SEED_N if not ns else None)
        header += [f"{d} avg@{one_n}", f"{d} pass@{one_n // 2}"] if one_n else [f"{d} avg@n", f"{d} pass@n/2"]
        for r in rows:
            m = cell.get((r, d))
            if m is None:
                table[r] += ["-", "-"]
                continue
            overall, n = m["overall"], m["n"]
            half = overall.get(f"pass@{n // 2}") if n >= 2 else None
            tag = "" if one_n else f" (n={n})"
            table[r] += [percent(overall["pass@1"]) + tag, (percent(half) + tag) if half is not None else "-"]
    return header, [table[r] for r in rows], datasets


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def plot(tasks, path):
    """One panel per dataset, one line of pass@k (x100) against k per row."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(t["metrics"]["dataset"] for t in tasks))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for t in (t for t in tasks if t["metrics"]["dataset"] == d):
            ks = sorted(int(m.split("@")[1]) for m in t["metrics"]["overall"] if m.startswith("pass@"))
            ys = [t["metrics"]["overall"][f"pass@{k}"] * 100 for k in ks]
            ax.plot(ks, ys, marker="o", label=t["row"])
        ax.set_xscale("log", base=2)
        ax.set_title(d)
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%)")
        ax.set_ylim(-2, 102)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="report.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a run folder of start.py (result/<timestamp>) or one task folder")
    parser.add_argument("--png", default=None, help="where to save the plot (default: <folder>/pass_at_k.png)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        report(args)


def report(args):
    tasks = load_tasks(args.folder)
    header, rows, _ = build_table(tasks)
    print(markdown(header, rows))
    print()
    for t in tasks:
        m = t["metrics"]
        print(f"- {t['dir'].name}: {m['dataset']}, {m['num_problems']} problems x {m['n']} samples -> {t['row']}")
    png = Path(args.png) if args.png else Path(args.folder) / "pass_at_k.png"
    plot(tasks, png)
    print(f"pass@k plot: {png}")

