"""Turn judged answers into chat SFT data: keep the correct ones, convert them, filter, shuffle, write in chunks.

    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge/<run>/0_1.jsonl
    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge_vote/<run> \\
        --max-tokens 32768 --tokenizer Qwen/Qwen3-0.6B --dedup \\
        --decontaminate ../shared/benchmarks/aime24.jsonl --decontaminate HuggingFaceH4/MATH-500:test \\
        --pass-rate 0.1:0.9 --max-per-problem 8 --per-problem-by difficulty --format jsonl,parquet

-d takes a shard file (as the seed does), a run folder (all its shards) or a stage folder (its newest complete
run), and may be repeated. Output in `<exp>/format_data/` (the part of the path before answer_judge/ or
answer_judge_vote/, or -o): `data_part{1,2,...}.jsonl`, 100000 conversations each, and with `--format parquet`
Parquet shards `train-0000i-of-0000n.parquet` that `datasets.load_dataset("parquet", data_files=...)` reads as
they are; beside them README.md (a dataset card: counts, filters, sources) and funnel.json/funnel.png.

One funnel, in this order, each answer counted at the first step that drops it and each problem at the step that
drops its last answer: judge null, judge false, format mismatch, truncated (no final answer, or, where the
answer_origin run recorded it, stopped by the length limit), no boxed final answer (--require-box), contaminated,
duplicate, too long, pass rate outside --pass-rate LO:HI, over --max-per-problem K (K answers at random per problem,
seeded, or by difficulty: more for the problems the teacher rarely solves). Pass rates come from the run folders'
problems.jsonl (reasonlite/problem_stats.py), else from the judged records themselves. The conversion of one record
is reasonlite/convert.py; the filters reasonlite/filters.py and reasonlite/decontaminate.py.

A kept answer whose final answer has no \\boxed{} teaches the student to leave its answer unboxed, while the
evaluator's pred and majority vote read the last box only (docs/grader.md): the summary counts those among the
written answers, and --require-box drops them (as extract_answer reads the final text: no box, an empty box or one
that never closes). This project's judge modes already judge such an answer false; judged data from elsewhere (a
judge that reads "the answer is ..." or prose) can hold them.

Memory: two passes. Pass 1 streams the input and appends every kept conversation to a temporary file in the output
folder, remembering only its byte offset and whether its answer is boxed (9 bytes per record; dedup adds 8 more,
the per-problem cap 12); per problem it keeps an id, two counts and a byte. Between the passes the per-problem
filters run on those arrays.
Pass 2 reads the survivors back in the order of a seeded permutation and writes the chunks, so the shuffle is exact
and uniform, the same for the same input and --seed. Each output file is written under a temporary name and all
are renamed when complete; files of an earlier, larger conversion are removed after the new ones are in place.
"""
import argparse
import errno
import json
import os
import re
import signal
from array import array
from collections import Counter
from pathlib import Path

import numpy as np

from reasonlite import funnel, jsonl
from reasonlite.answers import extract_answer
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.convert import (CONTAMINATED, DUPLICATE, ERROR, MISMATCH, OUT_OF_BAND, OVER_CAP, TOO_LONG, TRUNCATED,
                                WRONG, check_record, convert)
from reasonlite.decontaminate import Decontaminator
from reasonlite.filters import (TokenCounter, cap_key, cut_answers, dedup_key, keep_per_problem, parse_band,
                                per_problem_caps)
from reasonlite.jsonl import DataError, IndexSet
from reasonlite.problem_stats import Lengths, pass_rates, problem_of
from reasonlite.signals import GracefulStop, Stopped

CHUNK_SIZE = 100000
STAGES = ("answer_judge", "answer_judge_vote")
UNBOXED = "no boxed final answer"  # --require-box
STEPS = (ERROR, WRONG, MISMATCH, TRUNCATED, UNBOXED, CONTAMINATED, DUPLICATE, TOO_LONG, OUT_OF_BAND, OVER_CAP)
STEP = {name: i + 1 for i, name in enumerate(STEPS)}  # a problem's `reached`: the step its last answer left at
WRITTEN = len(STEPS) + 1
PARQUET_RE = re.compile(r"train-\d{5}-of-\d{5}\.parquet")


def input_files(paths):
    files = []
    for p in map(Path, paths):
        if p.is_file():
            if p.name.endswith(".part"):
                raise DataError(f"{p}: an unfinished shard (.part); rerun the judge until its run folder completes")
            files.append(p)
        elif p.is_dir() and jsonl.shard_files(p):
            if not jsonl.is_complete(p):
                raise DataError(f"{p}: an incomplete run folder; rerun the judge until it completes")
            files += jsonl.folder_files(p, include_part=False)
        elif p.is_dir():
            run = jsonl.latest_complete(p)
            if run is None:
                raise DataError(f"{p}: no shard files and no complete run folder inside")
            files += jsonl.folder_files(run, include_part=False)
        else:
            raise DataError(f"{p}: no such file or folder")
    return files


def experiment_dir(path):
    """The experiment folder of a judged data path: what comes before answer_judge/ or answer_judge_vote/."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.name in STAGES:
            return parent.parent
    raise DataError(f"{path}: not under an answer_judge/ or answer_judge_vote/ folder; pass -o for the output folder")


class Problems:
    """Per problem a few bytes: an id, its judged true and false counts, and the furthest funnel step any of its
    answers reached (343K problems take a few tens of MB; no answer is held)."""

    def __init__(self):
        self.ids = {}
        self.true, self.false, self.reached = array("I"), array("I"), array("B")

    def id_of(self, record):
        info = record.get("info")
        key = str(info["index"]) if isinstance(info, dict) and info.get("index") is not None else (
            problem_of(str(record["index"])) if record.get("index") is not None else str(record.get("prompt")))
        pid = self.ids.get(key)
        if pid is None:
            pid = self.ids[key] = len(self.ids)
            self.true.append(0)
            self.false.append(0)
            self.reached.append(0)
        self.true[pid] += record.get("judge") is True
        self.false[pid] += record.get("judge") is False
        return pid

    def reach(self, pid, step):
        if step > self.reached[pid]:
            self.reached[pid] = step

    def rates(self, known):
        """Pass rate per problem id: from problems.jsonl (`known`) where it has the problem, else counted here."""
        out = np.full(len(self.ids), np.nan)
        for key, pid in self.ids.items():
            rate = known.get(key)
            if rate is None and self.true[pid] + self.false[pid]:
                rate = self.true[pid] / (self.true[pid] + self.false[pid])
            if rate is not None:
                out[pid] = rate
        return out


def collect(files, tmp_path, args, counts, stop, damage, problems, lengths, cut):
    """Pass 1: stream, convert and filter; append kept conversations to tmp_path. Returns (offsets, problem ids,
    cap keys, unboxed flags, decontaminator) of the kept ones."""
    decon = Decontaminator(args.decontaminate, args.ngram) if args.decontaminate else None
    seen = IndexSet() if args.dedup else None
    counter = TokenCounter(args.tokenizer) if args.max_tokens else None
    offsets = array("q")  # 8 bytes a record, where a list of ints takes 36
    pids, keys = array("I"), array("q")  # only with --max-per-problem / --pass-rate
    unboxed = array("B")  # 1 where a kept answer's final text has no \boxed{} (all 0 under --require-box)
    per_problem = bool(args.max_per_problem or args.pass_rate)
    pending = []  # (conversation, problem id, cap key, unboxed) waiting for a batched token count
    with open(tmp_path, "wb") as out:
        def write(batch):
            lengths_ = counter([m for m, _, _, _ in batch]) if counter else [0] * len(batch)
            for (messages, pid, key, no_box), n_tokens in zip(batch, lengths_):
                if counter and n_tokens > args.max_tokens:
                    counts[TOO_LONG] += 1
                    problems.reach(pid, STEP[TOO_LONG])
                    continue
                problems.reach(pid, STEP[OUT_OF_BAND])  # survived pass 1; pass 2 says how far on
                offsets.append(out.tell())
                unboxed.append(no_box)
                if per_problem:
                    pids.append(pid)
                    keys.append(key)
                out.write(jsonl.dumps({"messages": messages}))

        for path in files:
            for lineno, record in jsonl.read_records(path, damage=damage):
                if stop.requested:
                    raise Stopped(f"{stop.signal_name}: nothing written (the output folder is as it was); rerun "
                                  "the same command")
                counts["total"] += 1
                reason, messages = convert(record, f"{path}:{lineno}")
                if reason is None and cut is not None and record.get("index") in cut:
                    reason = TRUNCATED  # a boxed answer, but the server stopped it at the length limit
                pid = problems.id_of(record)
                counts[reason or "correct"] += 1
                if isinstance(record.get("answer"), str):
                    lengths.add({None: "correct", WRONG: "wrong", TRUNCATED: "truncated"}.get(reason, ""),
                                len(record["answer"]))
                if reason:
                    problems.reach(pid, STEP[reason])
                    continue
                # The final answer as extract_answer reads it (the judge modes, the evaluator's pred and vote):
                # the last \boxed{} of the text after </think>.
                no_box = extract_answer(messages[1]["content"]) is None
                if no_box and args.require_box:
                    counts[UNBOXED] += 1
                    problems.reach(pid, STEP[UNBOXED])
                    continue
                problem = record["prompt"] if isinstance(record.get("prompt"), str) else messages[0]["content"]
                if decon is not None and problem in decon:
                    counts[CONTAMINATED] += 1
                    problems.reach(pid, STEP[CONTAMINATED])
                    continue
                if seen is not None:
                    key = dedup_key(messages)
                    if key in seen:
                        counts[DUPLICATE] += 1
                        problems.reach(pid, STEP[DUPLICATE])
                        continue
                    seen.add(key)
                pending.append((messages, pid, cap_key(args.seed, record.get("index")) if per_problem else 0,
                                no_box))
                if len(pending) >= 256:
                    write(pending)
                    pending = []
        write(pending)
    if counts["total"] == 0:
        raise DataError(f"{', '.join(map(str, files))}: no records")
    return offsets, np.frombuffer(pids, dtype=np.uint32), np.frombuffer(keys, dtype=np.int64), \
        np.frombuffer(unboxed, dtype=np.uint8), decon


def select(n_kept, pids, keys, rates, problems, args, counts):
    """Between the passes: the per-problem filters. Returns the indices (into the kept records) that survive."""
    keep = np.ones(n_kept, dtype=bool)
    if args.pass_rate:
        lo, hi = args.band
        rate = rates[pids] if n_kept else np.zeros(0)
        keep &= (rate >= lo) & (rate <= hi)  # a problem without a pass rate (all undecided) is outside
        counts[OUT_OF_BAND] = int((~keep).sum())
    if args.max_per_problem:
        caps = per_problem_caps(rates, args.max_per_problem, args.per_problem_by)
        within = np.zeros(n_kept, dtype=bool)
        within[keep] = keep_per_problem(pids[keep], keys[keep], caps)
        counts[OVER_CAP] = int((keep & ~within).sum())
        step = np.where(keep, np.where(within, WRITTEN, STEP[OVER_CAP]), STEP[OUT_OF_BAND])
        keep = within
    else:
        step = np.where(keep, WRITTEN, STEP[OUT_OF_BAND])
    if args.pass_rate or args.max_per_problem:
        reached = np.frombuffer(problems.reached, dtype=np.uint8).copy()
        np.maximum.at(reached, pids, step.astype(np.uint8))
        problems.reached = array("B", reached.tobytes())
    else:
        for pid, r in enumerate(problems.reached):
            if r == STEP[OUT_OF_BAND]:
                problems.reached[pid] = WRITTEN
    return np.flatnonzero(keep)


def write_outputs(tmp_path, offsets, survivors, save_dir, args, stop):
    """Pass 2: the surviving conversations in a seeded random order, as JSONL chunks and/or Parquet shards.

    Every file is written under a hidden temporary name first and all are renamed into place at the end, so a
    crash or a stop at any point before leaves the previous conversion whole, never a mix of old and new files.
    """
    order = survivors[np.random.default_rng(args.seed).permutation(len(survivors))]
    offsets = np.frombuffer(offsets, dtype=np.int64)
    size = args.chunk_size
    n = (len(order) + size - 1) // size
    finals = []
    if "jsonl" in args.formats:
        finals += [(save_dir / f"data_part{i + 1}.jsonl", i) for i in range(n)]
    if "parquet" in args.formats:
        finals += [(save_dir / f"train-{i:05d}-of-{n:05d}.parquet", i) for i in range(n)]
    temps = {final: final.with_name(f".{final.name}.{os.getpid()}.tmp") for final, _ in finals}
    try:
        with open(tmp_path, "rb") as src:
            for final, i in finals:
                chunk = order[i * size:(i + 1) * size]
                print(f"Saving {len(chunk)} records to {final}")
                lines = _read_lines(src, offsets, chunk)
                if final.suffix == ".jsonl":
                    with open(temps[final], "wb") as out:
                        out.writelines(lines)
                        out.flush()
                        os.fsync(out.fileno())
                else:
                    _write_parquet(temps[final], lines)
                if stop.requested:
                    raise Stopped(f"{stop.signal_name}: nothing written (the output folder is as it was); rerun "
                                  "the same command")
        # The renames take milliseconds; signals wait until all are done, so no stop can leave a mix.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            for final, _ in finals:
                os.replace(temps[final], final)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
    # Files an earlier, bigger conversion (or one in another format) left would be trained on as if they were ours.
    written = {final for final, _ in finals}
    for stale in list(save_dir.glob("data_part*.jsonl")) + list(save_dir.glob("train-*-of-*.parquet")):
        ours = re.fullmatch(r"data_part\d+\.jsonl", stale.name) or PARQUET_RE.fullmatch(stale.name)
        if ours and stale not in written:
            stale.unlink()
    return [final for final, _ in finals]


def _read_lines(src, offsets, chunk):
    for j in chunk:
        src.seek(offsets[j])
        yield src.readline()


def _write_parquet(path, lines, batch=512):
    """Parquet with one column, messages: list<struct<role, content>>, the shape trl's SFT reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    schema = pa.schema([("messages", pa.list_(message))])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        rows = []
        for line in lines:
            rows.append(json.loads(line))
            if len(rows) >= batch:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))


def build_funnel(save_dir, files, counts, problems, rates, lengths, args, decon, origins, n_cut):
    steps = [("in", len(problems.ids), counts["total"])]
    reached = np.frombuffer(problems.reached, dtype=np.uint8)
    shown = {ERROR, WRONG, MISMATCH, TRUNCATED}
    shown |= {UNBOXED} if args.require_box else set()
    shown |= {CONTAMINATED} if decon is not None else set()
    shown |= {DUPLICATE} if args.dedup else set()
    shown |= {TOO_LONG} if args.max_tokens else set()
    shown |= {OUT_OF_BAND} if args.pass_rate else set()
    shown |= {OVER_CAP} if args.max_per_problem else set()
    for name in STEPS:
        if name in shown:
            label = name
            if name == OUT_OF_BAND:
                label = f"pass rate outside {args.band[0]:g}:{args.band[1]:g}"
            elif name == OVER_CAP:
                label = f"over {args.max_per_problem} per problem ({args.per_problem_by})"
            elif name == TOO_LONG:
                label = f"longer than {args.max_tokens} tokens"
            steps.append((label, int((reached == STEP[name]).sum()), counts[name]))
    notes = {}
    if decon is not None:
        notes[f"contaminated: {decon.n}-gram overlap with {decon.problems} problems of "
              f"{len(args.decontaminate)} benchmark source(s)"] = counts[CONTAMINATED]
    if origins:
        notes["truncated: answers the server stopped at the length limit, per the answer_stats of "
              + ", ".join(origins)] = n_cut
    if counts["unboxed written"]:
        notes["written answers with no boxed final answer (--require-box drops them)"] = counts["unboxed written"]
    known = rates[~np.isnan(rates)]
    hist = np.histogram(known, bins=20, range=(0, 1))[0].tolist() if len(known) else [0] * 20
    return funnel.make("format_data", save_dir, steps, "written", lengths=lengths.to_json(),
                       pass_rate={"bins": 20, "counts": hist, "none": int(np.isnan(rates).sum())},
                       source=", ".join(map(str, files)), notes=notes)


def report(counts, kept, f, require_box=False):
    total = counts["total"]
    print(f"[total data]: {total}")
    print(f"[kept data]: {kept}")
    # The evaluator's pred and vote read the last \boxed{} only: an answer without one teaches the student to omit it.
    if require_box:
        print(f"[no boxed final answer]: {counts[UNBOXED]} dropped (--require-box)")
    else:
        print(f"[no boxed final answer]: {counts['unboxed written']} of {kept} kept answers (judged correct without "
              "a \\boxed{} final answer; --require-box drops them)")
    # The seed's four ratios; truncated outputs, which the seed counted as format mismatches, are shown apart.
    for name, key in (("format mismatch", MISMATCH), ("truncated", TRUNCATED), ("error", ERROR), ("wrong", WRONG),
                      ("correct", "correct")):
        print(f"[{name} ratio]: {counts[key] / total}")
    print("[funnel]:")
    for line in funnel.table(f):
        print(line)


def write_card(save_dir, f, files, args, outputs):
    """README.md: a short dataset card (what the Hub shows, and what load_dataset(folder) reads: the Parquet)."""
    kept, problems = f["steps"][-1]["answers"], f["steps"][-1]["problems"]
    parquet = any(p.suffix == ".parquet" for p in outputs)
    pattern = "train-*.parquet" if parquet else "data_part*.jsonl"
    rows = "\n".join(f"| {s['step']} | {s['problems']} | {s['answers']} |" for s in f["steps"])
    filters = [f"--{k.replace('_', '-')} {v}" for k, v in (
        ("max_tokens", args.max_tokens), ("tokenizer", args.tokenizer), ("pass_rate", args.pass_rate),
        ("max_per_problem", args.max_per_problem), ("ngram", args.ngram if args.decontaminate else None)) if v]
    filters += ["--require-box"] * bool(args.require_box) + ["--dedup"] * bool(args.dedup)
    filters += [f"--decontaminate {d}" for d in args.decontaminate]
    if args.max_per_problem:
        filters.append(f"--per-problem-by {args.per_problem_by}")
    text = (f"---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: \"{pattern}\"\n"
            f"task_categories:\n- text-generation\n---\n\n"
            f"# {save_dir.parent.name}: math reasoning SFT data\n\n"
            f"{kept} conversations for {problems} problems, distilled by reasonlite: the teacher's answers judged "
            f"correct, converted to `{{\"messages\": [user, assistant]}}` with the reasoning in `<think>...</think>`, "
            f"shuffled with seed {args.seed}.\n\n"
            f"Files: {', '.join(p.name for p in outputs)}.\n\n"
            f"```python\nimport datasets\nds = datasets.load_dataset(\"{'parquet' if parquet else 'json'}\", "
            f"data_files=\"{pattern}\", split=\"train\")\n```\n\n"
            f"## Filters\n\n`{' '.join(filters) if filters else 'none beyond the judge and the format'}`\n\n"
            f"| step | problems | answers |\n|---|---|---|\n{rows}\n\n"
            f"## Sources\n\n" + "".join(f"- `{p}`\n" for p in files))
    jsonl.write_atomic(save_dir / "README.md", text)


def run(args):
    files = input_files(args.data_path)
    for path in files:  # a wrong kind of file is named before any folder is made for its output
        for lineno, record in jsonl.read_records(path):
            check_record(record, f"{path}:{lineno}")
            break
    save_dir = Path(args.output) if args.output else experiment_dir(args.data_path[0]) / "format_data"
    save_dir.mkdir(parents=True, exist_ok=True)
    print(f"[load]: {', '.join(map(str, files))}\n[save]: {save_dir}")
    run_folders = list(dict.fromkeys(p.parent for p in files))
    cut, origins = cut_answers(run_folders)
    counts, problems, lengths = Counter(), Problems(), Lengths("characters")
    damage = jsonl.Damage()
    tmp_path = save_dir / f".collect-{os.getpid()}.jsonl.tmp"
    jsonl.remove_stale_temps(save_dir, ".*.tmp")  # what a SIGKILLed conversion left behind
    with GracefulStop() as stop:  # the first signal stops between records, a second at once; nothing is half-written
        try:
            offsets, pids, keys, unboxed, decon = collect(files, tmp_path, args, counts, stop, damage, problems,
                                                          lengths, cut if len(cut) else None)
            rates = problems.rates(pass_rates(run_folders))
            survivors = select(len(offsets), pids, keys, rates, problems, args, counts)
            counts["unboxed written"] = int(unboxed[survivors].sum()) if len(survivors) else 0
            f = build_funnel(save_dir, files, counts, problems, rates, lengths, args, decon, origins, len(cut))
            report(counts, len(survivors), f, args.require_box)
            if damage.count:
                print(f"[damaged lines]: {damage.count} skipped (named above); rerun the judge to redo them")
            if not len(survivors):
                raise DataError(f"no record survived the filters; nothing written to {save_dir}")
            outputs = write_outputs(tmp_path, offsets, survivors, save_dir, args, stop)
            funnel.save(f, save_dir)
            write_card(save_dir, f, files, args, outputs)
            print(f"[funnel]: {save_dir / 'funnel.json'}, {f.get('plot')}; dataset card {save_dir / 'README.md'}")
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise jsonl.disk_full(save_dir / "data_part*.jsonl", e) from None
            raise
        finally:
            tmp_path.unlink(missing_ok=True)
    return save_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Convert judged answers into chat SFT data (format_data/).")
    p.add_argument("-d", "--data_path", action="append", required=True,
                   help="judged shard file, run folder or stage folder; repeatable")
    p.add_argument("-o", "--output", help="output folder (default: <experiment>/format_data)")
    p.add_argument("--seed", type=int, default=42, help="shuffle and sampling seed (default 42)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="records per output file")
    p.add_argument("--format", default="jsonl", help="jsonl, parquet or jsonl,parquet (default jsonl)")
    p.add_argument("--max-tokens", type=int, help="drop conversations longer than this, in --tokenizer tokens")
    p.add_argument("--tokenizer", help="the student's tokenizer (path or id) for --max-tokens")
    p.add_argument("--dedup", action="store_true", help="drop repeated answers to the same problem")
    p.add_argument("--require-box", action="store_true",
                   help="drop answers whose final text has no \\boxed{} answer (a judge that reads 'the answer "
                        "is ...' or prose keeps them; the evaluator's pred and majority vote read the last box only)")
    p.add_argument("--decontaminate", action="append", default=[], metavar="SRC",
                   help="drop problems sharing an n-gram with a benchmark: a .jsonl file, a folder of them, or "
                        "a dataset id[:split]; repeatable")
    p.add_argument("--ngram", type=int, default=8, help="n-gram size for --decontaminate (default 8, as open-r1)")
    p.add_argument("--pass-rate", metavar="LO:HI",
                   help="keep only problems whose pass rate is in [LO, HI] (e.g. 0.1:0.9: neither always nor never "
                        "solved)")
    p.add_argument("--max-per-problem", type=int, metavar="K", help="keep at most K correct answers per problem")
    p.add_argument("--per-problem-by", choices=("uniform", "difficulty"), default="uniform",
                   help="uniform: K for every problem, chosen at random (--seed); difficulty: ceil(2K(1 - pass "
                        "rate)), at least 1")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.max_tokens and not args.tokenizer:
        p.error("--max-tokens needs --tokenizer (the student's, e.g. Qwen/Qwen3-0.6B)")
    if args.chunk_size < 1 or args.ngram < 1:
        p.error("--chunk-size and --ngram must be at least 1")
    if args.max_per_problem is not None and args.max_per_problem < 1:
        p.error("--max-per-problem must be at least 1")
    args.formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if not args.formats or set(args.formats) - {"jsonl", "parquet"}:
        p.error(f"--format {args.format!r}: jsonl, parquet or jsonl,parquet")
    args.band = None
    if args.pass_rate:
        try:
            args.band = parse_band(args.pass_rate)
        except ValueError as e:
            p.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        run(args)
