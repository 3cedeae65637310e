"""Show what an experiment folder holds: each stage's latest complete run, its record counts and one record.

    python3 -m reasonlite.show datas/example [--max-truncated 0.1]

For the stages that hold answers (answer_origin and the judge stages) it counts the answers cut before their final
answer: `finish_reason` "length" where a record carries it, else an answer without a final part (a gpt-oss output
with no final channel, a think-style output still inside <think>; reasonlite.answers.final_text is None) or whose
final part opens a \boxed{ that never closes (answer_origin records carry no finish_reason). A cut
answer can never be judged correct, so a stage where more than --max-truncated of the answers were cut gets a
warning: raise max_tokens, or expect fewer training records. Judge stages also show the share judged correct among
the answers that finished. Where a run folder has a manifest.json, one line says what produced it. Damaged lines
(a copy cut short, a hand edit) are listed with their file and line; every stage skips them and a rerun redoes
their records.
"""
import argparse
import json
from collections import Counter
from pathlib import Path

from reasonlite import jsonl, problem_stats
from reasonlite.cli import add_debug_flag, user_errors

STAGES = ["answer_origin", "vote", "answer_judge", "answer_judge_vote"]
ANSWER_STAGES = {"answer_origin", "answer_judge", "answer_judge_vote"}
MAX_TRUNCATED = 0.10


def _short(value, width=160):
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[:width] + f"... ({len(text)} chars)"


def is_cut(record):
    """Was this answer cut before its final answer? (None for a request that failed: there is no answer.)"""
    answer = record.get("answer")
    if answer is None:
        return None
    return problem_stats.is_cut(answer, record.get("finish_reason"))


def _manifest_line(folder):
    path = Path(folder) / "manifest.json"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    git, model, sampling = m.get("git") or {}, m.get("model") or {}, m.get("sampling") or {}
    dirty = " (modified)" if git.get("dirty") is True else ""
    settings = ", ".join(f"{k} {sampling[k]}" for k in ("temperature", "top_p", "max_tokens", "num_answer")
                         if k in sampling)
    return (f"    manifest: commit {str(git.get('commit'))[:12]}{dirty}, model {model.get('id') or model.get('path')}"
            + (f", {settings}" if settings else ""))


def show(base, out=print, max_truncated=MAX_TRUNCATED):
    base = Path(base)
    if not base.is_dir():  # else a mistyped path would print nothing and look like an empty experiment
        raise ValueError(f"{base}: no such folder (give an experiment folder, a config's base_data_path)")
    if not any(jsonl.latest_complete(base / stage) for stage in STAGES):
        raise ValueError(f"{base}: no complete run in this experiment yet (the first comes from "
                         "`python3 infer.py -c <config> -m infer` with this folder as base_data_path)")
    for stage in STAGES:
        folder = jsonl.latest_complete(base / stage)
        if folder is None:
            continue
        n = 0
        tally = Counter()
        sample = None
        damage = jsonl.Damage(say=0)  # listed below with the stage, not as warnings while reading
        for rec in jsonl.iter_folder(folder, include_part=False, damage=damage):
            n += 1
            if stage == "answer_origin":
                tally["unfinished"] += rec.get("answer") is None
            elif stage == "vote":
                tally["problems with a vote"] += bool(rec.get("vote"))
            else:
                tally[f"judge {json.dumps(rec.get('judge'))}"] += 1
            if stage in ANSWER_STAGES:
                cut = is_cut(rec)
                tally["answered"] += cut is not None
                tally["cut before the final answer"] += cut is True
                if cut is False and stage != "answer_origin":
                    tally["finished"] += 1
                    tally["finished judged true"] += rec.get("judge") is True
            if sample is None:
                sample = rec
        files = ", ".join(p.name for p in jsonl.folder_files(folder, include_part=False))
        shown = {k: v for k, v in tally.items()
                 if k not in ("answered", "cut before the final answer", "finished", "finished judged true")}
        counts = ", ".join(f"{k} {v}" for k, v in sorted(shown.items()) if v)
        out(f"{folder}: {n} records in {files}" + (f" ({counts})" if counts else ""))
        line = _manifest_line(folder)
        if line:
            out(line)
        if stage in ANSWER_STAGES and tally["answered"]:
            cut, answered = tally["cut before the final answer"], tally["answered"]
            text = f"    truncation: {cut} of {answered} answers ({cut / answered:.0%}) cut before the final answer"
            if tally["finished"]:
                text += (f"; judged true among finished answers: {tally['finished judged true']} of "
                         f"{tally['finished']} ({tally['finished judged true'] / tally['finished']:.0%})")
            out(text)
            if cut / answered > max_truncated:
                out(f"warning: {stage}: {cut / answered:.0%} of the answers were cut before their final answer "
                    f"(more than {max_truncated:.0%}); a cut answer is never judged correct: raise max_tokens")
        if damage.count:
            out(f"    damaged lines: {damage.count} (skipped by every stage; a rerun of the stage redoes them)")
            for path, lineno, why in damage.places[:20]:
                out(f"        {path}:{lineno}: {why}")
            if damage.count > 20:
                out(f"        ... and {damage.count - 20} more")
        for key, value in (sample or {}).items():
            out(f"    {key}: {_short(value)}")
    from reasonlite.funnel import show as show_funnels  # the funnel of each stage, where it wrote one
    show_funnels(base, out=out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m reasonlite.show", description="Summarize an experiment folder.")
    parser.add_argument("base_data_path")
    parser.add_argument("--max-truncated", type=float, default=MAX_TRUNCATED, metavar="SHARE",
                        help="warn about a stage with more than this share of answers cut (default %(default)s)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        show(args.base_data_path, max_truncated=args.max_truncated)


if __name__ == "__main__":
    main()
