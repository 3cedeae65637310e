"""The funnel report: for one stage, problems and answers in and out, with the count of every drop by its reason.

    python3 -m reasonlite.funnel datas/example      # every stage's funnel (show prints the same)

Each stage writes funnel.json and funnel.png beside its problems.jsonl (the adaptive loop one pair per shard,
funnel_<rank>_<world>.*, when sharded; they add up), and the conversion writes them into format_data/. The table:

    funnel of answer_judge/20250101_000000            problems     answers
      in                                                    343       10976
      - request failed (no text)                             -0          -2
      - cut by the length limit                              -1        -410
      - judge undecided (null)                               -0          -1
      - judged false                                        -21       -3120
      = correct                                             321        7443

An answer leaves at the first step that drops it; a problem leaves at the step that drops its last answer, so each
problem is counted at one step only. The PNG shows the problems' pass rates and the answers' lengths (tokens where
the server's usage was recorded, else characters) by kind: correct, wrong, truncated.
"""
import argparse
import json
from collections import Counter
from pathlib import Path

from reasonlite import jsonl

DROPS = ("failed", "cut", "undecided", "wrong")
REASONS = {"failed": "request failed (no text)", "cut": "cut by the length limit",
           "undecided": "judge undecided (null)", "wrong": "judged false"}
WRONG_BY_STAGE = {"vote": "outside a clear vote's top group",
                  "answer_origin": "wrong (judged false, or outside a clear vote)"}
STAGES = ("answer_origin", "vote", "answer_judge", "answer_judge_vote")


def make(stage, folder, steps, kept, pass_rate=None, lengths=None, source=None, notes=None):
    """A funnel: `steps` is [(reason, problems dropped, answers dropped)] after an ("in", problems, answers) first
    step; `kept` names what is left."""
    (_, p, a), drops = steps[0], steps[1:]
    rows = [{"step": "in", "problems": p, "answers": a}]
    for reason, dp, da in drops:
        rows.append({"step": reason, "problems": -dp, "answers": -da})
        p, a = p - dp, a - da
    rows.append({"step": kept, "problems": p, "answers": a})
    return {"stage": stage, "folder": str(folder), "source": str(source) if source else None, "steps": rows,
            "pass_rate": pass_rate, "lengths": lengths, "notes": notes or {}}


class Builder:
    """Counts a stage's funnel from its problems.jsonl rows as they stream past (see problem_stats.py)."""

    def __init__(self, stage, folder, source=None):
        self.stage, self.folder, self.source = stage, folder, source
        self.problems = 0
        self.answers = 0
        self.empty = 0
        self.dropped = {k: [0, 0] for k in DROPS}  # kind -> [problems, answers]
        self.pass_counts = [0] * 20
        self.pass_none = 0
        self.notes = Counter()

    def add(self, row):
        self.problems += 1
        left = row.get("answers", 0)
        self.answers += left
        if left == 0:
            self.empty += 1
        for kind in DROPS:
            n = row.get(kind, 0)
            if n:
                self.dropped[kind][1] += n
                left -= n
                self.dropped[kind][0] += left == 0
        p = row.get("pass_rate")
        if p is None:
            self.pass_none += 1
        else:
            self.pass_counts[min(int(p * 20), 19)] += 1
        if row.get("closed"):
            self.notes[f"closed: {row['closed']}"] += 1
        if row.get("label"):
            self.notes[f"label: {row['label']}"] += 1

    def watch(self, rows):
        for r in rows:
            self.add(r)
            yield r

    def finish(self, lengths=None):
        steps = [("in", self.problems, self.answers)]
        if self.empty:
            steps.append(("no answers at all", self.empty, 0))
        for kind in DROPS:
            reason = WRONG_BY_STAGE.get(self.stage, REASONS[kind]) if kind == "wrong" else REASONS[kind]
            steps.append((reason, *self.dropped[kind]))
        kept = "pseudo-labelled (in a clear vote's top group)" if self.stage == "vote" else "correct"
        return make(self.stage, self.folder, steps, kept,
                    pass_rate={"bins": 20, "counts": self.pass_counts, "none": self.pass_none},
                    lengths=lengths.to_json() if lengths is not None else None, source=self.source,
                    notes=dict(sorted(self.notes.items())))


def table(f):
    """The funnel as lines of text."""
    name = "/".join(Path(f["folder"]).parts[-2:])
    lines = [f"funnel of {name:<44} {'problems':>9} {'answers':>11}"]
    for i, s in enumerate(f["steps"]):
        mark = "  " if i == 0 else ("= " if i == len(f["steps"]) - 1 else "- ")
        lines.append(f"  {mark}{s['step']:<48.48} {s['problems']:>9} {s['answers']:>11}")
    if f.get("notes"):
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in f["notes"].items()))
    pr = f.get("pass_rate")
    if pr and sum(pr["counts"]):
        q = _quartiles(pr)
        lines.append(f"  pass rate of problems: quartiles {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}, "
                     f"{pr['counts'][0]} in [0, 0.05), {pr['counts'][-1]} in [0.95, 1], {pr['none']} without one")
    if f.get("plot"):
        lines.append(f"  plot: {f['plot']}")
    return lines


def _quartiles(pr):
    counts, total = pr["counts"], sum(pr["counts"])
    out, seen, b = [], 0, 0
    for q in (0.25, 0.5, 0.75):
        while b < len(counts) and seen + counts[b] < q * total:
            seen += counts[b]
            b += 1
        out.append(min(b, len(counts) - 1) / len(counts) + 0.5 / len(counts))
    return out


def merge(funnels):
    """One funnel of several (the shards of a run): step counts and histograms add up."""
    if len(funnels) == 1:
        return funnels[0]
    out = json.loads(json.dumps(funnels[0]))
    for f in funnels[1:]:
        for s, t in zip(out["steps"], f["steps"]):
            s["problems"] += t["problems"]
            s["answers"] += t["answers"]
        for key in ("pass_rate", "lengths"):
            a, b = out.get(key), f.get(key)
            if a and b:
                for k, v in a.items():
                    if isinstance(v, list) and k != "edges":
                        a[k] = [x + y for x, y in zip(v, b[k])]
                    elif k == "none":
                        a[k] += b[k]
        for k, v in (f.get("notes") or {}).items():
            out["notes"][k] = out["notes"].get(k, 0) + v
    out["plot"] = None
    return out


def plot(f, path):
    """funnel.png: pass rates of the problems, and the answers' lengths by kind."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, nothing global to close
    fig = Figure(figsize=(11, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.84, wspace=0.22)
    left, right = fig.subplots(1, 2)
    pr = f.get("pass_rate")
    if pr:
        width = 1 / pr["bins"]
        left.bar([i * width for i in range(pr["bins"])], pr["counts"], width=width, align="edge",
                 color="tab:blue", edgecolor="white")
        left.set_title(f"pass rate ({pr['none']} problems without one)", fontsize=10)
    left.set_xlabel("pass rate")
    left.set_ylabel("problems")
    ln = f.get("lengths")
    if ln and any(sum(ln[k]) for k in ("correct", "wrong", "truncated")):
        edges = ln["edges"]
        for kind, color in (("correct", "tab:green"), ("wrong", "tab:red"), ("truncated", "tab:gray")):
            if sum(ln[kind]):
                right.stairs(ln[kind], edges, label=f"{kind} ({sum(ln[kind])})", color=color, linewidth=1.5)
        used = [i for i in range(len(edges) - 1) if any(ln[k][i] for k in ("correct", "wrong", "truncated"))]
        if used:
            right.set_xlim(edges[max(used[0] - 1, 0)], edges[min(used[-1] + 2, len(edges) - 1)])
        right.set_xscale("log")
        right.set_xlabel(f"answer length ({ln['unit']})")
        right.set_ylabel("answers")
        right.legend(fontsize=8)
        right.set_title("answer lengths by kind", fontsize=10)
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, "no judged answers here", ha="center", va="center")
    fig.suptitle(f"{f['stage']}: {'/'.join(Path(f['folder']).parts[-2:])}", fontsize=11)
    with jsonl.atomic_file(path, "wb") as out:
        fig.savefig(out, format="png", dpi=90)


def save(f, folder, suffix=""):
    """Write funnel{suffix}.json and .png into folder (each whole or not at all); the PNG is best effort."""
    folder = Path(folder)
    png = folder / f"funnel{suffix}.png"
    try:
        plot(f, png)
        f["plot"] = str(png)
    except Exception as e:  # a plotting problem must not fail a stage whose data is written
        f["plot"] = None
        f.setdefault("notes", {})[f"no plot ({type(e).__name__})"] = 1
    jsonl.write_atomic(folder / f"funnel{suffix}.json", json.dumps(f, ensure_ascii=False, indent=1) + "\n")
    return f


def load(folder):
    """The merged funnel of a run folder (all its funnel*.json), or None."""
    found = []
    for path in sorted(Path(folder).glob("funnel*.json")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    if not found:
        return None
    f = merge(found)
    if len(found) == 1:
        return f
    f["plot"] = " ".join(x["plot"] for x in found if x.get("plot")) or None
    return f


def show(base, out=print):
    """Print the funnel of each stage's newest complete run and of format_data/, where they were written."""
    base = Path(base)
    shown = 0
    for stage in STAGES:
        folder = jsonl.latest_complete(base / stage)
        f = load(folder) if folder is not None else None
        if f is not None:
            for line in table(f):
                out(line)
            shown += 1
    f = load(base / "format_data")
    if f is not None:
        for line in table(f):
            out(line)
        shown += 1
    return shown


def main(argv=None):
    from reasonlite.cli import add_debug_flag, user_errors
    parser = argparse.ArgumentParser(prog="python3 -m reasonlite.funnel", description=__doc__.splitlines()[0])
    parser.add_argument("base_data_path")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        if not show(args.base_data_path):
            print(f"{args.base_data_path}: no funnel written yet (stages write one when a run folder completes)")


if __name__ == "__main__":
    main()
