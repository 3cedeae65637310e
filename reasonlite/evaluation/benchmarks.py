"""The benchmarks the evaluator knows, and reading a benchmark's problems from the hub or a local copy.

    DATASETS["zwhe99/gpqa_diamond_mc"]    # split, columns, categories, answer format, the name report.py prints
    problems, meta = load_problems(opts)  # opts: the evaluator's options (reasonlite/evaluation/options.py)

A problem is {"idx", "problem", "body", "gold", "row", "choice"}: its position in the split, its text, what the
user message says about it (the text, or the text and its lettered options), its gold answer as the grader reads it,
the whole dataset row (kept in generation.jsonl, so a report can go back to any column) and whether it is multiple
choice. The list and columns are the seed evaluator's (DeepMath's uni_eval.py DATASET_INFO); a local copy is a .jsonl
in the same columns, or the seed's layout `data_dir/<data_id>` (a save_to_disk folder, or `<split>.jsonl` in it).

Answer formats:
- most datasets: one string (or number) per row; a one-element list is unwrapped, as the seed does.
- zwhe99/simplerl-OlympiadBench: `final_answer` is a list of `$...$` strings ("$\\frac{1}{2}$", "$69$,$84$");
  the dollars go and several answers join with ", ", which the grader reads as an unordered list.
- zwhe99/gpqa_diamond_mc: multiple choice. The problem already lists its options (A)-(D) and asks for
  \\boxed{letter}; the gold is `\\boxed{D}`; the letter is the gold, and a sample's answer is the letter it names.
  Other multiple-choice data with the options in a column of their own (choices_key, the seed's dead `choice_key`
  path) get the options listed in the seed's wording, and a gold given as a letter, an index or the option's text.
"""
import re
from pathlib import Path

from reasonlite.answers import last_boxed
from reasonlite.jsonl import read_records

DATASETS = {
    "zwhe99/aime90": {"split": "2024", "problem": "problem", "answer": "expected_answer", "label": "AIME24"},
    "math-ai/aime25": {"split": "test", "problem": "problem", "answer": "answer", "label": "AIME25"},
    "zwhe99/amc23": {"split": "test", "problem": "question", "answer": "answer", "label": "AMC23"},
    "zwhe99/MATH": {"split": "math500", "problem": "problem", "answer": "expected_answer",
                    "categories": ["level", "type"], "label": "MATH500"},
    "zwhe99/simplerl-minerva-math": {"split": "test", "problem": "problem", "answer": "answer",
                                     "label": "MinervaMath"},
    "zwhe99/simplerl-OlympiadBench": {"split": "test", "problem": "question", "answer": "final_answer",
                                      "gold": "dollar_list", "label": "OlympiadBench"},
    "zwhe99/gpqa_diamond_mc": {"split": "test", "problem": "problem", "answer": "solution", "gold": "choice",
                               "categories": ["domain"], "label": "GPQA-Diamond"},
    "zwhe99/pm-en": {"split": "test", "problem": "question", "answer": "answer", "categories": ["level"],
                     "label": "PolyMath"},
}
# Local copies name their columns differently (the Qwen2.5-Math files say `answer` where the hub says
# `expected_answer`), so a local file may use any of these when the data_id's own key is absent.
PROBLEM_KEYS = ("problem", "question")
ANSWER_KEYS = ("expected_answer", "answer", "final_answer")
# Labels of local files named after a benchmark (aime24.jsonl ...), so report.py puts them in the right column.
FILE_LABELS = {"aime24": "AIME24", "aime25": "AIME25", "amc23": "AMC23", "math500": "MATH500",
               "minerva_math": "MinervaMath", "olympiadbench": "OlympiadBench", "gpqa_diamond": "GPQA-Diamond",
               "gpqa_diamond_mc": "GPQA-Diamond", "pm-en": "PolyMath", "polymath": "PolyMath"}
LETTERS = "ABCDEFGHIJ"


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
    # The seed reads data_dir/<data_id>[/<subset>] with load_from_disk; a .jsonl per split is the plain-file twin.
    folder = base / data_id / opts["subset"] if opts["subset"] else base / data_id
    for candidate in (folder / f"{split}.jsonl", base / f"{data_id}.jsonl", folder):
        if candidate.exists():
            return candidate
    raise ValueError(f"data_dir {data_dir!r} holds none of {folder.relative_to(base)}/{split}.jsonl, "
                     f"{data_id}.jsonl, {folder.relative_to(base)}/")


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
    # A ClassLabel column holds integers; the seed grades against the label's name, and so do we.
    labels = {k: f for k, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    where = f"{data_id}[{split}]"
    rows = []
    for i, row in enumerate(ds):
        row = dict(row)
        for key, feature in labels.items():
            if isinstance(row.get(key), int) and row[key] >= 0:
                row[key] = feature.int2str(row[key])
        rows.append((f"{where} row {i}", row))
    return rows


def _pick_key(rows, explicit, preferred, fallbacks, what, opts_name):
    if explicit:
        return explicit
    present = rows[0][1].keys() if rows else ()
    for key in [preferred] + [k for k in fallbacks if k != preferred]:
        if key and key in present:
            return key
    looked = ", ".join(dict.fromkeys(k for k in [preferred, *fallbacks] if k))
    raise ValueError(f"{rows[0][0]}: no {what} key (looked for {looked}); set {opts_name}")


# ---- answers ------------------------------------------------------------------------------------------------------
def _text(value):
    if isinstance(value, list) and len(value) == 1:  # some hub datasets keep the answer in a one-element list
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        return None
    return str(value).strip()


_DOLLARS = re.compile(r"\$([^$]+)\$")


def _dollar_list(value):
    """OlympiadBench's final_answer: ["$69$,$84$"] -> "69, 84"; ["$\\frac{1}{2}$"] -> "\\frac{1}{2}"."""
    parts = value if isinstance(value, list) else [value]
    out = []
    for part in parts:
        text = _text(part)
        if text is None:
            return None
        whole = re.fullmatch(r"\s*\$[^$]+\$(?:\s*,\s*\$[^$]+\$)*\s*", text)
        out += [m.strip() for m in _DOLLARS.findall(text)] if whole else [text]
    return ", ".join(out) if out else None


def mc_letter(answer):
    """The option letter an answer names ('C', '(C)', 'C. 12 eV', '\\text{(C)}'), or None."""
    if not isinstance(answer, str):
        return None
    s = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}", r"\1", answer).strip().strip("$").strip()
    m = re.fullmatch(r"\(?([A-J])\)?(?:[.:)]?\s+.*)?", s, re.S)
    return m.group(1) if m else None


def choice_prompt(question, choices):
    """The seed's wording of a question with options (its bulid_choice_prompt)."""
    letters = LETTERS[:len(choices)]
    listed = "".join(f"({letter}) {choice}\n" for letter, choice in zip(letters, choices))
    boxes = ", ".join(f"\\boxed{{{letter}}}" for letter in letters[:-1])
    last = f"\\boxed{{{letters[-1]}}}"
    return f"{question}\n\n\n{listed}\nPlease write your final answer in the form of {boxes}, or {last}"


def _choice_gold(value, choices):
    """A multiple-choice gold as the grader reads it: "D", or "(D) option text" where the options are known."""
    if choices:
        if isinstance(value, int) and not isinstance(value, bool):
            letter = LETTERS[value] if 0 <= value < len(choices) else None
        else:
            text = _text(value)
            letter = mc_letter(last_boxed(text) or text) if text else None
            if letter is None and text in [str(c).strip() for c in choices]:
                letter = LETTERS[[str(c).strip() for c in choices].index(text)]
        if letter is None or LETTERS.index(letter) >= len(choices):
            return None
        return f"({letter}) {choices[LETTERS.index(letter)]}"
    text = _text(value)
    return mc_letter(last_boxed(text) or text) if text else None


# ---- problems -----------------------------------------------------------------------------------------------------
def load_problems(opts):
    """The selected problems (see the module docstring) and {"dataset", "split", "categories"}."""
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
    choices_key = opts["choices_key"]
    kind = "choice" if choices_key else info.get("gold", "text")
    problems = []
    for idx in range(start, end):
        where, row = rows[idx]
        text = row.get(problem_key)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: problem key {problem_key!r} is missing or empty")
        body = text
        choices = None
        if choices_key:
            choices = row.get(choices_key)
            if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
                raise ValueError(f"{where}: choices key {choices_key!r} must hold a list of 2 to {len(LETTERS)} "
                                 "options")
            body = choice_prompt(text, choices)
        value = row.get(answer_key)
        gold = _choice_gold(value, choices) if kind == "choice" else \
            _dollar_list(value) if kind == "dollar_list" else _text(value)
        if gold is None:
            what = ("an option letter" + (", index or option text" if choices else "")) if kind == "choice" \
                else "an answer"
            raise ValueError(f"{where}: answer key {answer_key!r} is missing, empty or not {what} ({value!r})")
        problems.append({"idx": idx, "problem": text, "body": body, "gold": gold, "row": row,
                         "choice": kind == "choice"})
    if info:
        label = info["label"] if (opts["split"] or info["split"]) == info["split"] else \
            f"{info['label']}-{opts['split']}"
    else:
        stem = Path(opts["data_dir"] if opts["data_dir"] and Path(opts["data_dir"]).is_file()
                    else opts["data_id"] or opts["data_dir"]).name.split(".")[0]
        label = FILE_LABELS.get(stem.lower(), stem)
    categories = [k for k in info.get("categories", []) if all(k in p["row"] for p in problems)]
    return problems, {"dataset": label, "split": opts["split"] or info.get("split"), "categories": categories}
