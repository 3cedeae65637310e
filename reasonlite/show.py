"""Show what an experiment folder holds: each stage's latest complete run, its record counts and one record.

    python3 -m reasonlite.show datas/example
"""
import argparse
import json
from collections import Counter

from reasonlite import jsonl
from reasonlite.cli import add_debug_flag, user_errors

STAGES = ["answer_origin", "vote", "answer_judge", "answer_judge_vote"]


def _short(value, width=160):
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[:width] + f"... ({len(text)} chars)"


def show(base, out=print):
    from pathlib import Path
    base = Path(base)
    for stage in STAGES:
        folder = jsonl.latest_complete(base / stage)
        if folder is None:
            continue
        n = 0
        tally = Counter()
        sample = None
        for rec in jsonl.iter_folder(folder, include_part=False):
            n += 1
            if stage == "answer_origin":
                tally["unfinished"] += rec.get("answer") is None
            elif stage == "vote":
                tally["problems with a vote"] += bool(rec.get("vote"))
            else:
                tally[f"judge {json.dumps(rec.get('judge'))}"] += 1
            if sample is None:
                sample = rec
        files = ", ".join(p.name for p in jsonl.folder_files(folder, include_part=False))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(tally.items()) if v)
        out(f"{folder}: {n} records in {files}" + (f" ({counts})" if counts else ""))
        for key, value in (sample or {}).items():
            out(f"    {key}: {_short(value)}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m reasonlite.show", description="Summarize an experiment folder.")
    parser.add_argument("base_data_path")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        show(args.base_data_path)


if __name__ == "__main__":
    main()
