"""Evaluate one model on one math benchmark: n samples per problem, graded, pass@k / maj@k per problem and dataset.

    cd eval
    # vLLM's offline engine on the visible GPUs (the default)
    python3 eval.py --base_model amd/ReasonLite-0.6B --data_id zwhe99/aime90 --output_dir result/x \
        --bf16 True --max_model_len 65536 --temperature 1 --top_p 0.98 --n 16
    # any OpenAI-compatible server instead (a vllm_start.py fleet: several URLs, comma-separated)
    python3 eval.py --base_model ../.cache/tiny-model --server_url http://127.0.0.1:8040 \
        --data_id zwhe99/aime90 --data_dir ../../shared/benchmarks/aime24.jsonl --output_dir result/y --n 4

Usually started by start.py, which runs a YAML list of such tasks on a pool of GPUs. Writes into output_dir:
- config.json       the options of the task (a later run into the same folder must agree on what shapes a sample)
- generation.jsonl  one record per problem: the dataset row, prompt, response / response_length / finish_reason
                    per sample, pred (the boxed answer), correct, pass@k, maj@k. While generating, each sample is
                    appended as its own line as it arrives, so a killed run leaves a file the next run completes.
- result.log        dataset means x100, one block per metric (the seed's layout); avg@n is pass@1
- metrics.json      the same means unrounded, for report.py

Sample i of a problem is drawn with seed + i, so a rerun, a resumed run or a run with a larger n reproduces the
samples it already has. Options follow the seed's evaluator (DeepMath's uni_eval.py); the ones marked "ours" below
are this project's additions.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import json
import os
import time

from metrics import format_result_log, ks_for, problem_metrics, summarize
from utils.cli import user_errors
from utils.client import ServerPool
from utils.grader import Grader, extract_answer
from utils.jsonl import ShardWriter
from utils.prompts import INFER_SUFFIX

# ---- benchmarks ---------------------------------------------------------------------------------------------------
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

# ---- prompts ------------------------------------------------------------------------------------------------------
# Kept small on purpose. chat_template_name: `default` (the tokenizer's own template) or a path to a .jinja file.
BOX_INSTRUCTION = INFER_SUFFIX.lstrip("\n")  # the seed's "Please reason step by step, ... within \boxed{}."
SYSTEM_PROMPTS = {
    "disabled": None,  # no system message (ReasonLite, Qwen3, DeepSeek-R1 distills)
    "simplerl": BOX_INSTRUCTION,  # for models trained to expect the boxed instruction (DeepScaleR, Polaris, ...)
}
PREFIX_PROMPTS = {"disabled": "", "boxed": BOX_INSTRUCTION + "\n"}
SUFFIX_PROMPTS = {"disabled": "", "boxed": INFER_SUFFIX}  # "boxed" is what infer.py asks the teacher

# ---- options ------------------------------------------------------------------------------------------------------
# name: (type, default, help). start.py checks its YAML against this table before it starts any task.
OPTIONS = {
    "base_model": (str, None, "model path or hub id; also the tokenizer whose chat template builds the prompt"),
    "chat_template_name": (str, "default", "`default` (the tokenizer's own) or a path to a .jinja template"),
    "system_prompt_name": (str, "disabled", "one of: " + ", ".join(SYSTEM_PROMPTS)),
    "prefix_prompt_name": (str, "disabled", "one of: " + ", ".join(PREFIX_PROMPTS)),
    "suffix_prompt_name": (str, "disabled", "one of: " + ", ".join(SUFFIX_PROMPTS)),
    "output_dir": (str, None, "folder for config.json, generation.jsonl, result.log, metrics.json"),
    "bf16": (bool, False, "offline engine dtype bfloat16 (neither bf16 nor fp16: float32, as the seed)"),
    "fp16": (bool, False, "offline engine dtype float16"),
    "tensor_parallel_size": (int, 1, "GPUs per offline engine"),
    "enforce_eager": (bool, False, "offline engine without CUDA graphs / compilation"),
    "gpu_memory_utilization": (float, 0.8, "offline engine GPU memory share"),
    "data_dir": (str, None, "local data: a .jsonl file, or a folder holding <data_id> (save_to_disk or .jsonl)"),
    "data_id": (str, None, "one of " + ", ".join(DATASETS) + ", or a path to a local .jsonl"),
    "split": (str, None, "dataset split (default: the data_id's)"),
    "subset": (str, None, "dataset config name on the hub"),
    "start_idx": (int, None, "first problem (0-based, inclusive)"),
    "end_idx": (int, None, "last problem (exclusive)"),
    "max_model_len": (int, 32768, "context length: prompt plus generation"),
    "temperature": (float, 0.6, "sampling temperature"),
    "top_p": (float, 1.0, "nucleus sampling"),
    "top_k": (int, -1, "top-k sampling (-1: off)"),
    "repetition_penalty": (float, 1.0, "repetition penalty"),
    "n": (int, 1, "samples per problem"),
    "seed": (int, 42, "sample i of a problem uses seed + i"),
    # ours
    "max_tokens": (int, None, "ours: cap on generated tokens (default: what max_model_len leaves)"),
    "server_url": (str, None, "ours: OpenAI-compatible server(s), comma-separated; default: offline engine"),
    "api_key_env": (str, None, "ours: environment variable holding the servers' API key"),
    "max_inflight_per_server": (int, 64, "ours: requests in flight per server"),
    "problem_key": (str, None, "ours: column of the problem text (default: the data_id's)"),
    "answer_key": (str, None, "ours: column of the gold answer (default: the data_id's)"),
}
REQUIRED = ("base_model", "output_dir")
# What shapes a sample's text. A folder whose config.json differs in one of these holds another task's samples;
# n, start_idx and end_idx may change (a run with more samples or problems completes the folder).
IDENTITY = ("base_model", "chat_template_name", "system_prompt_name", "prefix_prompt_name", "suffix_prompt_name",
            "data_id", "split", "subset", "bf16", "fp16", "max_model_len", "max_tokens", "temperature", "top_p",
            "top_k", "repetition_penalty", "seed")
SERVER_WAIT_S = 120.0


def log(msg):
    print(msg, flush=True)


def parse_bool(text):
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(f"expected True or False, got {text!r}")


def convert(name, value):
    """An option's value from a command-line string or a YAML scalar; ValueError naming the option."""
    kind = OPTIONS[name][0]
    if value is None:
        return None
    try:
        if kind is bool:
            return parse_bool(value)
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)  # YAML reads `split: 2024` as a number
    except ValueError:
        raise ValueError(f"option {name} must be {kind.__name__}, got {value!r}") from None


def validate(opts):
    """Every problem with the options at once, one per line; raises ValueError."""
    errors = []
    for name in REQUIRED:
        if not opts.get(name):
            errors.append(f"option {name} is required")
    if not opts.get("data_id") and not opts.get("data_dir"):
        errors.append("option data_id is required (or data_dir pointing at a local .jsonl)")

    def check(cond, msg):
        if not cond:
            errors.append(msg)

    n = opts["n"]
    check(n >= 1, f"n must be at least 1, got {n}")
    check(opts["max_model_len"] >= 1, f"max_model_len must be at least 1, got {opts['max_model_len']}")
    check(opts["max_tokens"] is None or opts["max_tokens"] >= 1,
          f"max_tokens must be at least 1, got {opts['max_tokens']}")
    check(opts["temperature"] >= 0, f"temperature must be 0 or more, got {opts['temperature']}")
    check(0 < opts["top_p"] <= 1, f"top_p must be in (0, 1], got {opts['top_p']}")
    check(opts["top_k"] >= -1, f"top_k must be -1 (off) or more, got {opts['top_k']}")
    check(opts["repetition_penalty"] > 0, f"repetition_penalty must be positive, got {opts['repetition_penalty']}")
    check(opts["tensor_parallel_size"] >= 1,
          f"tensor_parallel_size must be at least 1, got {opts['tensor_parallel_size']}")
    check(0 < opts["gpu_memory_utilization"] <= 1,
          f"gpu_memory_utilization must be in (0, 1], got {opts['gpu_memory_utilization']}")
    check(opts["max_inflight_per_server"] >= 1,
          f"max_inflight_per_server must be at least 1, got {opts['max_inflight_per_server']}")
    check(not (opts["bf16"] and opts["fp16"]), "bf16 and fp16 are both set; choose one")
    start, end = opts["start_idx"], opts["end_idx"]
    check(start is None or start >= 0, f"start_idx must be 0 or more, got {start}")
    check(start is None or end is None or end > start, f"end_idx ({end}) must be greater than start_idx ({start})")
    for name, table in (("system_prompt_name", SYSTEM_PROMPTS), ("prefix_prompt_name", PREFIX_PROMPTS),
                        ("suffix_prompt_name", SUFFIX_PROMPTS)):
        check(opts[name] in table, f"{name} {opts[name]!r} is unknown; known: {', '.join(table)}")
    template = opts["chat_template_name"]
    check(template == "default" or Path(template).is_file(),
          f"chat_template_name {template!r} is neither `default` nor a template file")
    data_id = opts.get("data_id")
    if data_id and data_id not in DATASETS and not opts.get("data_dir") and not _looks_local(data_id):
        errors.append(f"unknown data_id {data_id!r}; known: {', '.join(DATASETS)}; or give data_dir / a path to a "
                      "local .jsonl")
    if opts["api_key_env"] and not os.environ.get(opts["api_key_env"]):
        errors.append(f"api_key_env names the environment variable {opts['api_key_env']}, which is not set")
    if errors:
        raise ValueError("\n".join(errors))
    return opts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, (kind, default, help_text) in OPTIONS.items():
        # Strings everywhere: convert() gives every option the same messages, from here and from start.py.
        if kind is bool:
            parser.add_argument(f"--{name}", nargs="?", const="True", default=None, help=help_text)
        else:
            parser.add_argument(f"--{name}", default=None, help=help_text)
    args = vars(parser.parse_args(argv))
    opts = {}
    for name, (_, default, _) in OPTIONS.items():
        opts[name] = convert(name, args[name]) if args[name] is not None else default
    return validate(opts)


# ---- data ---------------------------------------------------------------------------------------------------------
def _looks_local(path):
    return str(path).endswith((".jsonl", ".json")) or Path(path).exists()


def _read_jsonl(path):
    from utils.jsonl import read_records
    return [(f"{path}:{lineno}", rec) for lineno, rec in read_records(path)]


def _local_source(opts):
    """The local file or saved dataset to read, or None to load data_id from the hub."""
    data_dir, data_id = opts["data_dir"], opts["data_id"]
    if data_dir is None:
        if data_id and data_id not in DATASETS and _looks_local(data_id):
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


# ---- prompts ------------------------------------------------------------------------------------------------------
def load_tokenizer(opts):
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(opts["base_model"])
    except Exception as e:  # transformers raises many kinds here; all mean "not a model folder or hub id"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot load the tokenizer of base_model {opts['base_model']!r} ({first})") from None
    if opts["chat_template_name"] != "default":
        tok.chat_template = Path(opts["chat_template_name"]).read_text(encoding="utf-8")
    if not tok.chat_template:
        raise ValueError(f"the tokenizer of {opts['base_model']} has no chat template; set chat_template_name "
                         "to a template file")
    return tok


def build_prompts(opts, problems, tok):
    """Add "prompt", "prompt_ids" and "max_tokens" to each problem."""
    system = SYSTEM_PROMPTS[opts["system_prompt_name"]]
    prefix, suffix = PREFIX_PROMPTS[opts["prefix_prompt_name"]], SUFFIX_PROMPTS[opts["suffix_prompt_name"]]
    for p in problems:
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": prefix + p["problem"] + suffix}]
        p["prompt"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already holds any BOS token; tokenizing again with special tokens would add a second one,
        # so both backends get these ids rather than the text.
        p["prompt_ids"] = tok(p["prompt"], add_special_tokens=False)["input_ids"]
        room = opts["max_model_len"] - len(p["prompt_ids"])
        if room < 1:
            raise ValueError(f"problem {p['idx']}: its prompt has {len(p['prompt_ids'])} tokens, which leaves no "
                             f"room under max_model_len {opts['max_model_len']}")
        # The seed asked for max_model_len new tokens; the engine stops at the context anyway, so this is the same.
        p["max_tokens"] = min(room, opts["max_tokens"]) if opts["max_tokens"] else room


# ---- the output folder --------------------------------------------------------------------------------------------
class OtherTaskError(ValueError):
    pass


def check_config(out, opts):
    path = out / "config.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OtherTaskError(f"{path}: not a config.json this evaluator wrote; use another output_dir") from None
    diffs = [f"{k}: {old.get(k)!r} there, {opts[k]!r} here" for k in IDENTITY if old.get(k) != opts[k]]
    if diffs:
        raise OtherTaskError(f"output_dir {out} holds another task's generations ({'; '.join(diffs)}); "
                             "use another output_dir, nothing was overwritten")


def load_samples(out, problems, n):
    """{(idx, i): sample} already in generation.jsonl, and the byte length of its whole lines.

    Reads both kinds of line: one sample (written while generating) and one problem with all its samples (written
    at the end). A line without its newline is a write a crash cut short; it is dropped and regenerated.
    """
    path = out / "generation.jsonl"
    samples = {}
    if not path.exists():
        return samples, 0
    by_idx = {p["idx"]: p for p in problems}
    by_prompt = {p["prompt"]: p for p in problems}
    keep = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break
            keep += len(raw)
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise OtherTaskError(f"{where}: not valid JSON, so not written by this evaluator; use another "
                                     "output_dir") from None
            if not isinstance(rec, dict):
                raise OtherTaskError(f"{where}: not a record this evaluator wrote; use another output_dir")
            prompt = rec.get("prompt")
            if "idx" in rec and rec["idx"] not in by_idx and prompt not in by_prompt:
                raise OtherTaskError(f"{where}: holds problem {rec['idx']!r}, outside this task's problems; use "
                                     "another output_dir or the earlier start_idx / end_idx, nothing was overwritten")
            # Seed-written files have no idx; their prompt says which problem a record is.
            problem = by_idx.get(rec["idx"]) if "idx" in rec else by_prompt.get(prompt)
            if problem is None or problem["prompt"] != prompt:
                raise OtherTaskError(f"{where}: a generation for a problem or prompt this task does not have; "
                                     f"output_dir {out} holds another task's generations; use another output_dir, "
                                     "nothing was overwritten")
            if "sample" in rec:
                entries = [(rec["sample"], rec.get("response"), rec.get("response_length"), rec.get("finish_reason"))]
            elif isinstance(rec.get("response"), list):
                k = len(rec["response"])
                lengths = rec.get("response_length") or [None] * k
                reasons = rec.get("finish_reason") or [None] * k
                entries = list(zip(range(k), rec["response"], lengths, reasons))
            else:
                raise OtherTaskError(f"{where}: neither a sample nor a problem record; use another output_dir")
            for i, text, length, reason in entries:
                if not isinstance(i, int) or i < 0 or not isinstance(text, str):
                    raise OtherTaskError(f"{where}: a sample without its number or text; use another output_dir")
                samples[(problem["idx"], i)] = {"response": text, "response_length": length, "finish_reason": reason}
    most = max((i + 1 for _, i in samples), default=0)
    if most > n:
        # The final rewrite keeps n samples per problem; the others would be lost.
        raise OtherTaskError(f"{path} holds {most} samples per problem, more than this task's n={n}; use another "
                             f"output_dir or n >= {most}, nothing was overwritten")
    return samples, keep


def write_atomic(path, text):
    """Write text (a string or an iterable of strings) to path so that a reader sees the old or the new file whole."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines([text] if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- generation ---------------------------------------------------------------------------------------------------
def sample_line(problem, i, seed, text, length, reason):
    return {"idx": problem["idx"], "sample": i, "seed": seed, "prompt": problem["prompt"], "response": text,
            "response_length": length, "finish_reason": reason}


async def _generate_server(opts, todo, append):
    urls = [u.strip() for u in opts["server_url"].split(",") if u.strip()]
    key = os.environ.get(opts["api_key_env"]) if opts["api_key_env"] else None
    done = failed = 0
    last = time.monotonic()
    async with ServerPool(urls, api_key=key, max_inflight_per_server=opts["max_inflight_per_server"]) as pool:
        await pool.wait_until_up(SERVER_WAIT_S, progress=log)
        model = await pool.model_name()
        log(f"generating {len(todo)} samples with {model} at {', '.join(urls)}")

        async def one(problem, i):
            nonlocal done, failed, last
            payload = {"model": model, "prompt": problem["prompt_ids"], "n": 1, "seed": opts["seed"] + i,
                       "max_tokens": problem["max_tokens"], "temperature": opts["temperature"],
                       "top_p": opts["top_p"], "skip_special_tokens": False}
            # vLLM's extensions, sent only when set, so that other OpenAI-compatible servers accept the request.
            if opts["top_k"] > 0:
                payload["top_k"] = opts["top_k"]
            if opts["repetition_penalty"] != 1.0:
                payload["repetition_penalty"] = opts["repetition_penalty"]
            data = await pool.post("/v1/completions", payload)
            if data is None:
                failed += 1
                return
            choice = data["choices"][0]
            length = (data.get("usage") or {}).get("completion_tokens")
            append(sample_line(problem, i, opts["seed"] + i, choice.get("text") or "", length,
                               choice.get("finish_reason")))
            done += 1
            if time.monotonic() - last >= 30:
                log(f"{done}/{len(todo)} samples")
                last = time.monotonic()

        await asyncio.gather(*(one(p, i) for p, i in todo))
    return failed


def _generate_offline(opts, todo, append):
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    dtype = "bfloat16" if opts["bf16"] else "float16" if opts["fp16"] else "float32"
    llm = LLM(model=opts["base_model"], tensor_parallel_size=opts["tensor_parallel_size"], dtype=dtype,
              seed=opts["seed"], gpu_memory_utilization=opts["gpu_memory_utilization"],
              enforce_eager=opts["enforce_eager"], max_model_len=opts["max_model_len"])
    prompts = [TokensPrompt(prompt_token_ids=p["prompt_ids"]) for p, _ in todo]
    params = [SamplingParams(n=1, seed=opts["seed"] + i, max_tokens=p["max_tokens"], temperature=opts["temperature"],
                             top_p=opts["top_p"], top_k=opts["top_k"], repetition_penalty=opts["repetition_penalty"],
                             skip_special_tokens=False)
              for p, i in todo]
    log(f"generating {len(todo)} samples with the offline engine ({dtype}, tp {opts['tensor_parallel_size']})")
    outputs = llm.generate(prompts, params)
    for (p, i), out in zip(todo, outputs):
        o = out.outputs[0]
        append(sample_line(p, i, opts["seed"] + i, o.text, len(o.token_ids), o.finish_reason))
    return 0


def generate(opts, out, problems, samples, keep):
    """Generate every (problem, sample) missing from samples, appending each to generation.jsonl as it arrives."""
    n = opts["n"]
    todo = [(p, i) for p in problems for i in range(n) if (p["idx"], i) not in samples]
    if not todo:
        return
    path = out / "generation.jsonl"
    if path.exists() and path.stat().st_size != keep:
        os.truncate(path, keep)  # a torn last line; appending after it would glue two records
    writer = ShardWriter(path, flush_every=1)  # whole lines, O_APPEND, flushed per sample: resumable at any time

    def append(rec):
        writer.write(rec)
        samples[(rec["idx"], rec["sample"])] = rec

    try:
        if opts["server_url"]:
            failed = asyncio.run(_generate_server(opts, todo, append))
        else:
            failed = _generate_offline(opts, todo, append)
    finally:
        writer.close()
    if failed:
        raise RuntimeError(f"{failed} of {len(todo)} samples failed after their retries; rerun the same command to "
                           "generate only those")


# ---- scoring ------------------------------------------------------------------------------------------------------
def score(problems, samples, n, seed):
    """Per-problem records with verdicts and metrics, in problem order."""
    records = []
    with Grader() as grader:
        futures = []
        for p in problems:
            texts = [samples[(p["idx"], i)]["response"] for i in range(n)]
            # The grader reads the final answer out of the whole output itself (box, else "final answer is ...").
            futures.append([grader.submit(p["gold"], t) for t in texts])
        for p, futs in zip(problems, futures):
            ss = [samples[(p["idx"], i)] for i in range(n)]
            preds = [extract_answer(s["response"]) for s in ss]
            correct = [f.result() is True for f in futs]  # None (the check timed out) counts as wrong
            rec = dict(p["row"])
            rec.update({"idx": p["idx"], "prompt": p["prompt"], "prompt_length": len(p["prompt_ids"]),
                        "gold": p["gold"], "response": [s["response"] for s in ss],
                        "response_length": [s["response_length"] for s in ss],
                        "finish_reason": [s["finish_reason"] for s in ss], "sample_seed": [seed + i for i in range(n)],
                        "pred": preds, "correct": correct})
            rec.update(problem_metrics(preds, correct))
            records.append(rec)
    return records


def main(argv=None):
    opts = parse_args(argv)
    # Spelled out, so that config.json says which split was read and `split: 2024` given later is the same task.
    opts["split"] = opts["split"] or DATASETS.get(opts["data_id"], {}).get("split")
    n = opts["n"]
    # Everything a later step would refuse is checked before the first write, so a refused folder is untouched.
    out = Path(opts["output_dir"])
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} exists and is not a folder")
    check_config(out, opts)
    problems, meta = load_problems(opts)
    tok = load_tokenizer(opts)
    build_prompts(opts, problems, tok)
    samples, keep = load_samples(out, problems, n)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.json", json.dumps(opts, indent=1, ensure_ascii=False) + "\n")
    have = sum(1 for p in problems for i in range(n) if (p["idx"], i) in samples)
    log(f"{meta['dataset']}: {len(problems)} problems x {n} samples, {have} already in {out / 'generation.jsonl'}")

    generate(opts, out, problems, samples, keep)
    records = score(problems, samples, n, opts["seed"])
    write_atomic(out / "generation.jsonl", (json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    summary = summarize(records, n, meta["categories"])
    result = format_result_log(summary, n)
    write_atomic(out / "result.log", result)
    stats = {"samples": len(records) * n,
             "no_answer": sum(p is None for r in records for p in r["pred"]),
             "truncated": sum(f == "length" for r in records for f in r["finish_reason"])}
    metrics = {"base_model": opts["base_model"], "data_id": opts["data_id"], "dataset": meta["dataset"],
               "split": meta["split"], "n": n, "ks": ks_for(n), "num_problems": len(records),
               "start_idx": problems[0]["idx"], "end_idx": problems[-1]["idx"] + 1, **summary, "stats": stats}
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    log(result)
    log(f"{stats['no_answer']} of {stats['samples']} samples without a boxed answer, {stats['truncated']} cut at "
        f"the length limit; written to {out}")


if __name__ == "__main__":  # vLLM starts its workers with spawn, which re-imports this file
    with user_errors():
        main()
