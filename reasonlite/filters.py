"""Filters of the training-data step (reasonlite/training_data.py runs them, all in one funnel).

Per answer: its length in the student's tokens (TokenCounter), whether the same answer to the same problem was
already kept (dedup_key), whether the server stopped it at the length limit (cut_answers). Per problem, between the
conversion's two passes, in arrays of a few bytes per answer: the pass-rate band (parse_band) and the cap on answers
per problem, uniform or by difficulty (per_problem_caps, keep_per_problem).
"""
from reasonlite.jsonl import DataError


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


def dedup_key(messages):
    """Problem and answer with whitespace runs collapsed: two records that differ only in spacing are one."""
    return " ".join(messages[0]["content"].split()) + "\0" + " ".join(messages[1]["content"].split())


# ---- per-problem filters (#14): they need every answer of a problem, so they run between the two passes ---------
def parse_band(text):
    """(lo, hi) from `LO:HI`, both in [0, 1]; ValueError with the reason otherwise."""
    lo, sep, hi = str(text).partition(":")
    try:
        lo, hi = float(lo or 0), float(hi or 1)
    except ValueError:
        raise ValueError(f"--pass-rate {text!r}: expected LO:HI, two numbers in [0, 1] (e.g. 0.1:0.9)") from None
    if not sep or not 0 <= lo <= hi <= 1:
        raise ValueError(f"--pass-rate {text!r}: expected LO:HI with 0 <= LO <= HI <= 1 (e.g. 0.1:0.9)")
    return lo, hi


def cap_key(seed, index):
    """A seeded pseudo-random 63-bit key per answer: keeping the K smallest of a problem keeps K of its answers
    uniformly at random, the same K for the same seed, without holding the answers."""
    import hashlib
    digest = hashlib.blake2b(f"{seed}\0{index}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def per_problem_caps(rates, k, by="uniform"):
    """How many answers each problem may keep: k for all (uniform), or by difficulty: ceil(2k(1 - pass rate)),
    at least 1 (k at a pass rate of 0.5, 2k for a problem almost never solved, 1 for one always solved; DART-Math's
    idea of giving the hard problems more). A problem without a pass rate gets k."""
    import numpy as np
    rates = np.asarray(rates, dtype=np.float64)
    if by == "uniform":
        return np.full(len(rates), k, dtype=np.int64)
    caps = np.ceil(2 * k * (1 - np.nan_to_num(rates, nan=0.5)) - 1e-9).astype(np.int64)
    return np.maximum(caps, 1)


def keep_per_problem(pid, key, caps):
    """Mask of the answers kept when problem p keeps its caps[p] answers of smallest key."""
    import numpy as np
    keep = np.zeros(len(pid), dtype=bool)
    if not len(pid):
        return keep
    order = np.lexsort((key, pid))
    sorted_pid = pid[order]
    starts = np.flatnonzero(np.r_[True, sorted_pid[1:] != sorted_pid[:-1]])
    rank = np.arange(len(pid)) - np.repeat(starts, np.diff(np.r_[starts, len(pid)]))
    keep[order] = rank < caps[sorted_pid]
    return keep


def cut_answers(run_folders):
    """Indices of the answers the server stopped at the length limit (finish_reason "length"), from the adaptive
    loop's per-answer stats of the answer_origin runs the judged folders were made from (their funnel.json names
    it). Such an answer can hold a boxed final answer and be judged true, yet end mid-sentence: not training data.
    Returns (IndexSet, the origin folders read)."""
    import json
    from pathlib import Path

    from reasonlite.jsonl import Damage, IndexSet
    from reasonlite.problem_stats import read_answer_stats
    cut, origins = IndexSet(), []
    for folder in run_folders:
        try:
            source = json.loads((Path(folder) / "funnel.json").read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError):
            continue
        if not source or source in origins or not Path(source).is_dir():
            continue
        origins.append(source)
        for entry in read_answer_stats(source, damage=Damage(say=0)):
            if entry.get("finish") == "length":
                cut.add(entry["index"])
    return cut, origins
