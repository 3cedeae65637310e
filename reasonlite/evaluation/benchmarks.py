"""The benchmarks the evaluator knows, and reading a benchmark's problems from the hub or a local file.

A problem is {"idx", "problem", "gold", "row"}: its position in the split, its text, its gold answer as a string and
the whole dataset row (kept in generation.jsonl, so a report can go back to any column).
"""
from pathlib import Path

from reasonlite.jsonl import read_records

# Hub datasets of the seed's evaluator: their default split, keys, categories, and the name report.py prints.
DATASETS = {
    "zwhe99/aime90": {"split": "2024", "problem": "problem", "answer": "expected_answer", "label": "AIME24"},
    "math-ai/aime25": {"split": "test", "problem": "problem", "answer": "answer", "label": "AIME25"},
    "zwhe99/amc23": {"split": "test", "problem": "question", "answer": "answer", "label": "AMC23"},
    "zwhe99/MATH": {"split": "math500", "problem": "problem", "answer": "expected_answer",
                    "categories": ["level", "type"], "label": "MATH500"},
}
# Local copies name their columns differently (the Qwen2.5-Math files say `answer` where the hub says
# `expected_answer`), so a local file may use any of these when the data_id's own key is absent.
PROBLEM_KEYS = ("problem", "question")
ANSWER_KEYS = ("expected_answer", "answer", "final_answer")
# Labels of local files named after a benchmark (aime24.jsonl ...), so report.py puts them in the right column.
FILE_LABELS = {"aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23", "math500": "MATH500"}

def looks_local(path):
    return str(path).endswith((".jsonl", ".json")) or Path(path).exists()


def _read_jsonl(path):
    return [(f"{path}:{lineno}", rec) for lineno, rec in read_records(path)]


def _local_source(opts):
    """The local file or saved dataset to read, or None to load data_id from the hub."""
    data_dir, data_id = opts["data_dir"], opts["data_id"]
    if data_dir is None:
        if data_id and data_id not in DATASETS and looks_local(data_id):
            if not Path(data_id).is_file():
                raise ValueError(f"data_id {data_id!r}: no such file")
            return Path(data_id)
        return None
    base = Path(data_dir)
    if base.is_file():
        return base
    if not base.is_dir():
        raise ValueError(f"data_dir {data_dir!r}: no such file or folder")
    if not data_id:
        raise ValueError(f"data_dir {data_dir!r} is a folder; give data_id to say which dataset inside it")
    split = opts["split"] or DATASETS.get(data_id, {}).get("split", "test")
    for candidate in (base / data_id / f"{split}.jsonl", base / f"{data_id}.jsonl", base / data_id):
        if candidate.exists():
            return candidate
    raise ValueError(f"data_dir {data_dir!r} holds none of {data_id}/{split}.jsonl, {data_id}.jsonl, {data_id}/")


def load_rows(opts):
    """[(where, row)] of the whole split, from a local copy or the hub."""
    data_id, info = opts["data_id"], DATASETS.get(opts["data_id"], {})
    split = opts["split"] or info.get("split")
    source = _local_source(opts)
    if source is not None and source.is_file():
        return _read_jsonl(source)
    import datasets
    try:
        if source is not None:  # a folder written by save_to_disk, as the seed's data_dir
            ds = datasets.load_from_disk(str(source))
        else:
            ds = datasets.load_dataset(data_id, opts["subset"]) if opts["subset"] else datasets.load_dataset(data_id)
    except Exception as e:  # network, missing dataset, bad folder: the user fixes all of them the same way
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot load data_id {data_id!r}{' from ' + str(source) if source else ''} ({first}); "
                         "set data_dir to a local copy") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None and len(ds) == 1:
            split = next(iter(ds))
        if split not in ds:
            raise ValueError(f"data_id {data_id!r} has no split {split!r}; splits: {', '.join(ds)}")
        ds = ds[split]
    where = f"{data_id}[{split}]"
    return [(f"{where} row {i}", dict(row)) for i, row in enumerate(ds)]


def _pick_key(rows, explicit, preferred, fallbacks, what, opts_name):
    if explicit:
        return explicit
    present = rows[0][1].keys() if rows else ()
    for key in [preferred] + [k for k in fallbacks if k != preferred]:
        if key and key in present:
            return key
    looked = ", ".join(dict.fromkeys(k for k in [preferred, *fallbacks] if k))
    raise ValueError(f"{rows[0][0]}: no {what} key (looked for {looked}); set {opts_name}")


def _gold(value):
    if isinstance(value, list) and len(value) == 1:  # some hub datasets keep the answer in a one-element list
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        return None
    return str(value)


def load_problems(opts):
    """The selected problems [{"idx", "problem", "gold", "row"}] and {"dataset", "split", "categories"}."""
    info = DATASETS.get(opts["data_id"], {})
    rows = load_rows(opts)
    if not rows:
        raise ValueError(f"{opts['data_dir'] or opts['data_id']}: no problems")
    start = opts["start_idx"] or 0
    end = min(opts["end_idx"] if opts["end_idx"] is not None else len(rows), len(rows))
    if start >= end:
        raise ValueError(f"start_idx {start} selects no problem: the dataset has {len(rows)}")
    # The keys are picked from the first row; a selected row without them is an error that names the row.
    problem_key = _pick_key(rows, opts["problem_key"], info.get("problem"), PROBLEM_KEYS, "problem", "problem_key")
    answer_key = _pick_key(rows, opts["answer_key"], info.get("answer"), ANSWER_KEYS, "answer", "answer_key")
    problems = []
    for idx in range(start, end):
        where, row = rows[idx]
        text = row.get(problem_key)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: problem key {problem_key!r} is missing or empty")
        gold = _gold(row.get(answer_key))
        if gold is None:
            raise ValueError(f"{where}: answer key {answer_key!r} is missing or empty")
        problems.append({"idx": idx, "problem": text, "gold": gold, "row": row})
    if info:
        label = info["label"] if (opts["split"] or info["split"]) == info["split"] else \
            f"{info['label']}-{opts['split']}"
    else:
        stem = Path(opts["data_dir"] if opts["data_dir"] and Path(opts["data_dir"]).is_file()
                    else opts["data_id"] or opts["data_dir"]).name.split(".")[0]
        label = FILE_LABELS.get(stem.lower(), stem)
    categories = [k for k in info.get("categories", []) if all(k in p["row"] for p in problems)]
    return problems, {"dataset": label, "split": opts["split"] or info.get("split"), "categories": categories}
