"""Turn judged answers into chat SFT data: keep the correct ones, convert them, filter, shuffle, write in chunks.

    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge/<run>/0_1.jsonl
    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge_vote/<run> \\
        --max-tokens 32768 --tokenizer Qwen/Qwen3-0.6B --dedup \\
        --decontaminate ../shared/benchmarks/aime24.jsonl --decontaminate HuggingFaceH4/MATH-500:test

-d takes a shard file (as the seed does), a run folder (all its shards) or a stage folder (its newest complete
run), and may be repeated. Output: `<exp>/format_data/data_part{1,2,...}.jsonl` (the part of the path before
answer_judge/ or answer_judge_vote/, or -o), 100000 conversations per file. The conversion of one record is
reasonlite/convert.py; the filters reasonlite/filters.py and reasonlite/decontaminate.py.

Memory: two passes. Pass 1 streams the input and appends every kept conversation to a temporary file in the output
folder, remembering only its byte offset (8 bytes per record; dedup adds 8 more). Pass 2 reads them back in the
order of a seeded permutation of those offsets and writes the chunks, so the shuffle is exact and uniform, the same
for the same input and --seed, and 5M records never sit in memory. Each chunk is written to a temporary name and
renamed when complete; part files of an earlier, larger conversion are removed after the new ones are in place.
"""
import argparse
import errno
import os
import re
import signal
from array import array
from collections import Counter
from pathlib import Path

import numpy as np

from reasonlite import jsonl
from reasonlite.cli import add_debug_flag, user_errors
from reasonlite.convert import (CONTAMINATED, DUPLICATE, ERROR, MISMATCH, TOO_LONG, TRUNCATED, WRONG, check_record,
                                convert)
from reasonlite.decontaminate import Decontaminator
from reasonlite.filters import TokenCounter, dedup_key
from reasonlite.jsonl import DataError, IndexSet
from reasonlite.signals import GracefulStop, Stopped

CHUNK_SIZE = 100000
STAGES = ("answer_judge", "answer_judge_vote")


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


def collect(files, tmp_path, args, counts, stop, damage):
    """Pass 1: stream, convert and filter; append kept conversations to tmp_path; return their byte offsets."""
    decon = Decontaminator(args.decontaminate, args.ngram) if args.decontaminate else None
    seen = IndexSet() if args.dedup else None
    counter = TokenCounter(args.tokenizer) if args.max_tokens else None
    offsets = array("q")  # 8 bytes a record, where a list of ints takes 36
    pending = []  # conversations waiting for a batched token count
    with open(tmp_path, "wb") as out:
        def write(batch):
            lengths = counter(batch) if counter else [0] * len(batch)
            for messages, n_tokens in zip(batch, lengths):
                if counter and n_tokens > args.max_tokens:
                    counts[TOO_LONG] += 1
                    continue
                offsets.append(out.tell())
                out.write(jsonl.dumps({"messages": messages}))

        for path in files:
            for lineno, record in jsonl.read_records(path, damage=damage):
                if stop.requested:
                    raise Stopped(f"{stop.signal_name}: nothing written (the output folder is as it was); rerun "
                                  "the same command")
                counts["total"] += 1
                reason, messages = convert(record, f"{path}:{lineno}")
                counts[reason or "correct"] += 1
                if reason:
                    continue
                problem = record["prompt"] if isinstance(record.get("prompt"), str) else messages[0]["content"]
                if decon is not None and problem in decon:
                    counts[CONTAMINATED] += 1
                    continue
                if seen is not None:
                    key = dedup_key(messages)
                    if key in seen:
                        counts[DUPLICATE] += 1
                        continue
                    seen.add(key)
                pending.append(messages)
                if len(pending) >= 256:
                    write(pending)
                    pending = []
        write(pending)
    if counts["total"] == 0:
        raise DataError(f"{', '.join(map(str, files))}: no records")
    return offsets, decon


def write_chunks(tmp_path, offsets, save_dir, seed, chunk_size, stop):
    """Pass 2: the kept conversations in a seeded random order, chunk by chunk.

    Every chunk is written under a hidden temporary name first and all are renamed into place at the end, so a
    crash or a stop at any point before leaves the previous conversion whole, never a mix of old and new parts.
    """
    order = np.random.default_rng(seed).permutation(len(offsets))
    offsets = np.frombuffer(offsets, dtype=np.int64)
    n_chunks = (len(order) + chunk_size - 1) // chunk_size
    finals = [save_dir / f"data_part{i + 1}.jsonl" for i in range(n_chunks)]
    temps = [f.with_name(f".{f.name}.{os.getpid()}.tmp") for f in finals]
    try:
        with open(tmp_path, "rb") as src:
            for i, (final, temp) in enumerate(zip(finals, temps)):
                chunk = order[i * chunk_size:(i + 1) * chunk_size]
                print(f"Saving {len(chunk)} records to {final}")
                with open(temp, "wb") as out:
                    for j in chunk:
                        src.seek(offsets[j])
                        out.write(src.readline())
                    out.flush()
                    os.fsync(out.fileno())
                if stop.requested:
                    raise Stopped(f"{stop.signal_name}: nothing written (the output folder is as it was); rerun "
                                  "the same command")
        # The renames take milliseconds; signals wait until all are done, so no stop can leave a mix.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            for temp, final in zip(temps, finals):
                os.replace(temp, final)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    # Parts an earlier, bigger conversion left behind would otherwise be trained on as if they were ours.
    for stale in save_dir.glob("data_part*.jsonl"):
        m = re.fullmatch(r"data_part(\d+)\.jsonl", stale.name)
        if m and int(m.group(1)) > n_chunks:
            stale.unlink()
    return n_chunks


def report(counts, kept, args, decon):
    total = counts["total"]
    print(f"[total data]: {total}")
    print(f"[kept data]: {kept}")
    # The seed's four ratios; truncated outputs, which the seed counted as format mismatches, are shown apart.
    for name, key in (("format mismatch", MISMATCH), ("truncated", TRUNCATED), ("error", ERROR), ("wrong", WRONG),
                      ("correct", "correct")):
        print(f"[{name} ratio]: {counts[key] / total}")
    print("[funnel]:")
    print(f"  {total:>10}  records read")
    for key in (ERROR, WRONG, MISMATCH, TRUNCATED):
        print(f"  {-counts[key]:>10}  {key}")
    print(f"  {counts['correct']:>10}  correct and well-formed")
    if decon is not None:
        print(f"  {-counts[CONTAMINATED]:>10}  {CONTAMINATED} ({decon.n}-gram overlap with {decon.problems} "
              f"problems of {len(args.decontaminate)} benchmark source(s))")
    if args.dedup:
        print(f"  {-counts[DUPLICATE]:>10}  {DUPLICATE}s (same problem, same text)")
    if args.max_tokens:
        print(f"  {-counts[TOO_LONG]:>10}  longer than {args.max_tokens} tokens of {args.tokenizer}")
    print(f"  {kept:>10}  written")


def run(args):
    files = input_files(args.data_path)
    for path in files:  # a wrong kind of file is named before any folder is made for its output
        for lineno, record in jsonl.read_records(path):
            check_record(record, f"{path}:{lineno}")
            break
    save_dir = Path(args.output) if args.output else experiment_dir(args.data_path[0]) / "format_data"
    save_dir.mkdir(parents=True, exist_ok=True)
    print(f"[load]: {', '.join(map(str, files))}\n[save]: {save_dir}")
    counts = Counter()
    damage = jsonl.Damage()
    tmp_path = save_dir / f".collect-{os.getpid()}.jsonl.tmp"
    with GracefulStop() as stop:  # the first signal stops between records, a second at once; nothing is half-written
        try:
            offsets, decon = collect(files, tmp_path, args, counts, stop, damage)
            report(counts, len(offsets), args, decon)
            if damage.count:
                print(f"[damaged lines]: {damage.count} skipped (named above); rerun the judge to redo them")
            if not offsets:
                raise DataError(f"no record survived the filters; nothing written to {save_dir}")
            write_chunks(tmp_path, offsets, save_dir, args.seed, args.chunk_size, stop)
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
    p.add_argument("--seed", type=int, default=42, help="shuffle seed (default 42)")
    p.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="records per data_part file")
    p.add_argument("--max-tokens", type=int, help="drop conversations longer than this, in --tokenizer tokens")
    p.add_argument("--tokenizer", help="the student's tokenizer (path or id) for --max-tokens")
    p.add_argument("--dedup", action="store_true", help="drop repeated answers to the same problem")
    p.add_argument("--decontaminate", action="append", default=[], metavar="SRC",
                   help="drop problems sharing an n-gram with a benchmark: a .jsonl file, a folder of them, or "
                        "a dataset id[:split]; repeatable")
    p.add_argument("--ngram", type=int, default=8, help="n-gram size for --decontaminate (default 8, as open-r1)")
    add_debug_flag(p)
    args = p.parse_args(argv)
    if args.max_tokens and not args.tokenizer:
        p.error("--max-tokens needs --tokenizer (the student's, e.g. Qwen/Qwen3-0.6B)")
    if args.chunk_size < 1 or args.ngram < 1:
        p.error("--chunk-size and --ngram must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        run(args)
