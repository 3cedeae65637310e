"""Turn judged answers into chat SFT data: keep the correct ones, convert them, filter, shuffle, write in chunks.

    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge/<run>/0_1.jsonl
    python3 utils/saving_to_training_format.py -d datas/<exp>/answer_judge_vote/<run> \\
        --max-tokens 32768 --tokenizer Qwen/Qwen3-0.6B --dedup \\
        --decontaminate ../shared/benchmarks/aime24.jsonl --decontaminate HuggingFaceH4/MATH-500:test

-d takes a shard file (as the seed does), a run folder (all its shards) or a stage folder (its newest complete
run), and may be repeated. Output: `<exp>/format_data/data_part{1,2,...}.jsonl` (the part of the path before
answer_judge/ or answer_judge_vote/, or -o), 100000 conversations per file, each

    {"messages": [{"role": "user", "content": <the problem prompt>},
                  {"role": "assistant", "content": "<think>\\n" + analysis + "\\n</think>" + final}]}

gpt-oss (harmony) records convert as the seed converts them: the user text between `<|start|>user<|message|>` and
the next `<|end|>` of model_input, the analysis and final channels of the generation. Records of think-style models
(`<think>...</think>` in the answer) convert to the same shape.

Memory: two passes. Pass 1 streams the input and appends every kept conversation to a temporary file in the output
folder, remembering only its byte offset (8 bytes per record; dedup adds 8 more). Pass 2 reads them back in the
order of a seeded permutation of those offsets and writes the chunks, so the shuffle is exact and uniform, the same
for the same input and --seed, and 5M records never sit in memory. Each chunk is written to a temporary name and
renamed when complete; part files of an earlier, larger conversion are removed after the new ones are in place.
"""
import argparse
import os
import re
import sys
from array import array
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from utils import jsonl  # noqa: E402
from utils.jsonl import DataError, IndexSet  # noqa: E402
from utils.prompts import infer_prompt  # noqa: E402

CHUNK_SIZE = 100000
STAGES = ("answer_judge", "answer_judge_vote")

# Harmony (gpt-oss) markup. The prompt ends with `<|start|>assistant`, so the generation opens with `<|channel|>`.
H_USER, H_END, H_RETURN = "<|start|>user<|message|>", "<|end|>", "<|return|>"
H_TURN, H_MESSAGE = "<|start|>assistant<|channel|>", "<|message|>"
HARMONY_MARKS = ("<|start|>", "<|channel|>", H_MESSAGE, H_END)
# End-of-text strings a server may leave at the end of a generation (vLLM drops stop strings, not always EOS text).
EOS_TEXTS = (H_RETURN, "<|im_end|>", "<|endoftext|>", "<|eot_id|>")

# Drop reasons, in the order the funnel reports them.
ERROR, WRONG, MISMATCH, TRUNCATED = "judge null (error)", "judge false (wrong)", "format mismatch", "truncated"
CONTAMINATED, DUPLICATE, TOO_LONG = "contaminated", "duplicate answer", "too long"


def _strip_eos(text):
    for eos in EOS_TEXTS:
        if text.endswith(eos):
            return text[: -len(eos)]
    return text


def harmony_parts(model_input, answer):
    """(analysis, final) of a gpt-oss generation, or a drop reason.

    The seed's rule: the full output split on `<|start|>assistant<|channel|>` has exactly 3 parts (the prompt, one
    analysis message, one final message). Checked more strictly here: the channels must be analysis then final, and
    no other harmony message may hide inside them, since the seed would have trained on such leftovers verbatim.
    """
    parts = (model_input + answer).split(H_TURN)
    if len(parts) == 2 and parts[1].startswith("analysis" + H_MESSAGE) and H_END not in parts[1]:
        return TRUNCATED  # ran out of tokens while still reasoning
    if len(parts) != 3:
        return MISMATCH
    head, final_part = parts[1], parts[2]
    if not head.startswith("analysis" + H_MESSAGE) or not head.endswith(H_END):
        return MISMATCH
    if not final_part.startswith("final" + H_MESSAGE):
        return MISMATCH
    analysis = head[len("analysis" + H_MESSAGE): -len(H_END)]
    final = _strip_eos(final_part[len("final" + H_MESSAGE):])
    if any(mark in analysis or mark in final for mark in HARMONY_MARKS):
        return MISMATCH
    return analysis, final


def think_parts(answer):
    """(reasoning, final) of a think-style generation (`<think>...</think>final`), or a drop reason.

    The opening tag may sit in the prompt instead (templates that prefill `<think>\\n`), so only the closing tag is
    required; a generation that opened a think block and never closed it ran out of tokens.
    """
    closes, opens = answer.count("</think>"), answer.count("<think>")
    if closes == 0:
        return TRUNCATED if opens else MISMATCH
    if closes > 1 or opens > 1:
        return MISMATCH
    reasoning, final = answer.split("</think>")
    reasoning = reasoning.lstrip()
    if opens:
        if not reasoning.startswith("<think>"):
            return MISMATCH  # text before the think block: not one reasoning and one answer
        reasoning = reasoning[len("<think>"):]
    return reasoning.strip("\n"), _strip_eos(final)


def user_text(record, harmony):
    if harmony:
        return record["model_input"].split(H_USER, 1)[1].split(H_END, 1)[0].strip()
    chatml = record["model_input"].split("<|im_start|>user\n", 1)
    if len(chatml) == 2 and "<|im_end|>" in chatml[1]:
        return chatml[1].split("<|im_end|>", 1)[0].strip()
    # Any other template: the user text infer.py built for this record's problem.
    return infer_prompt(record["prompt"]).strip()


def _check(record, where):
    if "judge" not in record:
        raise DataError(f"{where}: no field 'judge'; this is not judged data (pass a file from answer_judge/ or "
                        "answer_judge_vote/, written by infer.py -m judge or -m judge_vote)")
    if record["judge"] not in (True, False, None):
        raise DataError(f"{where}: field 'judge' must be true, false or null, got {record['judge']!r}")
    if not isinstance(record.get("model_input"), str):
        raise DataError(f"{where}: field 'model_input' is missing or not a string")
    answer = record.get("answer")
    if answer is None and isinstance(record.get("model_output"), str):
        answer = record["model_output"][len(record["model_input"]):]  # seed-style records: output = input + answer
    if record["judge"] is not None and not isinstance(answer, str):
        raise DataError(f"{where}: field 'answer' is missing or not a string")
    harmony = H_USER in record["model_input"]
    if not harmony and not isinstance(record.get("prompt"), str) and "<|im_start|>user\n" not in record["model_input"]:
        raise DataError(f"{where}: field 'prompt' is missing or not a string")
    return answer, harmony


def convert(record, where):
    """(None, messages) for a record to keep, else (why it is dropped, None). The judge is asked first, as the seed
    does, so a wrong answer counts as wrong whatever its format."""
    answer, harmony = _check(record, where)
    if record["judge"] is None:
        return ERROR, None
    if record["judge"] is False:
        return WRONG, None
    parts = harmony_parts(record["model_input"], answer) if harmony else think_parts(answer)
    if isinstance(parts, str):
        return parts, None
    if record.get("finish_reason") == "length":  # records that carry it can show a final answer cut off
        return TRUNCATED, None
    return None, [{"role": "user", "content": user_text(record, harmony)},
                  {"role": "assistant", "content": "<think>\n" + parts[0] + "\n</think>" + parts[1]}]


# ---- decontamination ------------------------------------------------------------------------------------------
PROBLEM_FIELDS = ("problem", "question", "prompt", "Problem", "Question")
_WORD = re.compile(r"\w+")


def ngrams(text, n):
    """Word n-grams of a lower-cased text; a text shorter than n words is one n-gram of itself."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _problem_of(record, where):
    for key in PROBLEM_FIELDS:
        if isinstance(record.get(key), str):
            return record[key]
    raise DataError(f"{where}: no problem text (one of the fields {', '.join(PROBLEM_FIELDS)})")


def benchmark_problems(source):
    """Problem texts of a benchmark: a .jsonl file, a folder of them, or a dataset id (`id` or `id:split`)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DataError(f"{source}: folder has no .jsonl benchmark files")
    elif path.is_file():
        files = [path]
    else:
        yield from _dataset_problems(source)
        return
    for f in files:
        for lineno, record in jsonl.read_records(f):
            yield _problem_of(record, f"{f}:{lineno}")


def _dataset_problems(source):
    import datasets
    name, _, split = source.partition(":")
    try:
        data = datasets.load_dataset(name, split=split or None)
    except Exception as e:  # offline, unknown id, gated: all mean the same to the user
        raise DataError(f"{source}: not a file, a folder or a loadable dataset id ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    for part in (data.values() if isinstance(data, dict) else [data]):
        for i, record in enumerate(part):
            yield _problem_of(record, f"{source} row {i}")


class Decontaminator:
    def __init__(self, sources, n):
        self.n = n
        self.grams = set()
        self.problems = 0
        for source in sources:
            for problem in benchmark_problems(source):
                self.grams |= ngrams(problem, n)
                self.problems += 1

    def __contains__(self, problem):
        return not self.grams.isdisjoint(ngrams(problem, self.n))


# ---- the two passes -------------------------------------------------------------------------------------------
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


class TokenCounter:
    """Token counts of whole conversations as the student sees them (its chat template), in batches."""

    def __init__(self, tokenizer_path):
        from transformers import AutoTokenizer
        try:
            self.tok = AutoTokenizer.from_pretrained(tokenizer_path)
        except Exception as e:
            raise DataError(f"--tokenizer {tokenizer_path}: cannot load it ({type(e).__name__})") from None

    def __call__(self, conversations):
        if self.tok.chat_template:
            texts = [self.tok.apply_chat_template(m, tokenize=False) for m in conversations]
        else:
            texts = ["\n".join(x["content"] for x in m) for m in conversations]
        # One call per batch: the Rust tokenizer spreads a batch over all cores.
        return [len(ids) for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]


def collect(files, tmp_path, args, counts):
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
            for lineno, record in jsonl.read_records(path):
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
                    key = " ".join(messages[0]["content"].split()) + "\0" + " ".join(messages[1]["content"].split())
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


def write_chunks(tmp_path, offsets, save_dir, seed, chunk_size):
    """Pass 2: the kept conversations in a seeded random order, chunk by chunk, each file renamed when whole."""
    order = np.random.default_rng(seed).permutation(len(offsets))
    offsets = np.frombuffer(offsets, dtype=np.int64)
    n_chunks = (len(order) + chunk_size - 1) // chunk_size
    with open(tmp_path, "rb") as src:
        for i in range(n_chunks):
            final = save_dir / f"data_part{i + 1}.jsonl"
            part = save_dir / f".data_part{i + 1}.jsonl.tmp"
            chunk = order[i * chunk_size:(i + 1) * chunk_size]
            print(f"Saving {len(chunk)} records to {final}")
            with open(part, "wb") as out:
                for j in chunk:
                    src.seek(offsets[j])
                    out.write(src.readline())
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, final)
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
            _check(record, f"{path}:{lineno}")
            break
    save_dir = Path(args.output) if args.output else experiment_dir(args.data_path[0]) / "format_data"
    save_dir.mkdir(parents=True, exist_ok=True)
    print(f"[load]: {', '.join(map(str, files))}\n[save]: {save_dir}")
    counts = Counter()
    tmp_path = save_dir / f".collect-{os.getpid()}.jsonl.tmp"
    try:
        offsets, decon = collect(files, tmp_path, args, counts)
        report(counts, len(offsets), args, decon)
        if not offsets:
            raise DataError(f"no record survived the filters; nothing written to {save_dir}")
        write_chunks(tmp_path, offsets, save_dir, args.seed, args.chunk_size)
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
    args = p.parse_args(argv)
    if args.max_tokens and not args.tokenizer:
        p.error("--max-tokens needs --tokenizer (the student's, e.g. Qwen/Qwen3-0.6B)")
    if args.chunk_size < 1 or args.ngram < 1:
        p.error("--chunk-size and --ngram must be at least 1")
    return args


def main(argv=None):
    from utils.cli import user_errors
    args = parse_args(argv)
    with user_errors():
        run(args)


if __name__ == "__main__":
    main()
