"""Decontamination: drop training problems that share a word n-gram with a benchmark problem (open-r1's rule, n=8).

Benchmarks come from a .jsonl file, a folder of them, or a dataset id (`id` or `id:split`).
"""
import re
from pathlib import Path

from reasonlite import jsonl
from reasonlite.jsonl import DataError

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
