"""The evaluator's options: one schema (reasonlite/config.py's Fields) for eval.py's flags and start.py's YAML blocks.

    python3 eval.py --help      # every option, the seed's first, then ours

Names, defaults and meanings follow the seed's evaluator (ReasonLite's eval/eval.py, which is DeepMath's uni_eval.py
with gpu_memory_utilization 0.8); options whose help starts with "ours" are this project's additions. Flags are
spelled `--base_model` as in the seed's scripts, and `--base-model` as python-fire, which the seed ran on, also
reads them; a boolean is `--bf16`, `--bf16 True` or `--bf16=false`. A YAML block and a command line are checked by
the same rules and report problems in the same wording as the pipeline's config (`file:line: key 'n' must be at
least 1, got 0`).
"""
import argparse
import os

from reasonlite.config import ConfigError, Field, check_fields, from_text, with_defaults
from reasonlite.evaluation.benchmarks import DATASETS, looks_local
from reasonlite.evaluation.prompting import (CHAT_TEMPLATES, PREFIX_PROMPTS, SUFFIX_PROMPTS, SYSTEM_PROMPTS,
                                             template_problem)

OPTIONS = {
    "base_model": Field("str", None, True, "model path or hub id; also the tokenizer whose chat template builds "
                                           "the prompt"),
    "chat_template_name": Field("str", "default", True, "`default` (the tokenizer's own), one of "
                                + ", ".join(CHAT_TEMPLATES) + ", or a path to a .jinja template"),
    "system_prompt_name": Field("str", "disabled", True, "one of: " + ", ".join(SYSTEM_PROMPTS)),
    "prefix_prompt_name": Field("str", "disabled", True, "text before the problem, one of: "
                                + ", ".join(PREFIX_PROMPTS)),
    "suffix_prompt_name": Field("str", "disabled", True, "text after the problem, one of: "
                                + ", ".join(SUFFIX_PROMPTS)),
    "output_dir": Field("str", None, True, "folder for config.json, generation.jsonl, result.log, metrics.json"),
    "bf16": Field("bool", False, True, "offline engine dtype bfloat16 (neither bf16 nor fp16: float32, as the seed)"),
    "fp16": Field("bool", False, True, "offline engine dtype float16"),
    "tensor_parallel_size": Field("int", 8, True, "GPUs per offline engine (start.py gives each task this many)"),
    "enforce_eager": Field("bool", False, True, "offline engine without CUDA graphs / compilation"),
    "gpu_memory_utilization": Field("float", 0.8, True, "offline engine GPU memory share"),
    "data_dir": Field("str", None, True, "local data: a .jsonl file, or a folder holding <data_id> (save_to_disk "
                                         "or <split>.jsonl)"),
    "data_id": Field("str", None, True, "one of " + ", ".join(DATASETS) + ", or a path to a local .jsonl"),
    "split": Field("name", None, True, "dataset split (default: the data_id's)"),
    "subset": Field("name", None, True, "dataset config name on the hub"),
    "start_idx": Field("int", None, True, "first problem (0-based, inclusive)"),
    "end_idx": Field("int", None, True, "last problem (exclusive)"),
    # The seed passes max_model_len to vLLM as each sample's max_tokens and leaves the engine's context at the
    # model's own: generation stops after max_model_len new tokens or at the context, whichever comes first.
    "max_model_len": Field("int", 32768, True, "new tokens per sample at most (the seed's meaning: vLLM's max_tokens;"
                                               " generation also stops at the model's context)"),
    "temperature": Field("float", 0.6, True, "sampling temperature"),
    "top_p": Field("float", 1.0, True, "nucleus sampling"),
    "top_k": Field("int", -1, True, "top-k sampling (-1: off)"),
    "repetition_penalty": Field("float", 1.0, True, "repetition penalty"),
    "n": Field("int", 1, True, "samples per problem"),
    "seed": Field("int", 42, True, "sample i of a problem uses seed + i"),
    # ours
    "max_tokens": Field("int", None, True, "ours: a lower cap on new tokens per sample than max_model_len"),
    "engine_max_model_len": Field("int", None, True, "ours: the context (prompt + generation) of the offline "
                                                     "engine, vLLM's max_model_len (default: the model's own, as the "
                                                     "seed); with server_url, the servers' context, to cap requests"),
    "server_url": Field("str", None, True, "ours: OpenAI-compatible server(s), comma-separated; default: offline "
                                           "engine"),
    "api_key_env": Field("str", None, True, "ours: environment variable holding the servers' API key"),
    "max_inflight_per_server": Field("int", 64, True, "ours: requests in flight per server"),
    "request_path": Field("auto|plain|stream", "auto", True, "ours: with server_url, plain JSON bodies where a "
                                                             "server's /metrics has vLLM's counters (auto), or one "
                                                             "path for all (reasonlite/client.py)"),
    "problem_key": Field("str", None, True, "ours: column of the problem text (default: the data_id's)"),
    "answer_key": Field("str", None, True, "ours: column of the gold answer (default: the data_id's)"),
    "choices_key": Field("str", None, True, "ours: column holding a multiple-choice problem's options as a list; "
                                            "the prompt lists them as (A), (B), ... and answers are graded by letter"),
}
REQUIRED = ("base_model", "output_dir")
# What shapes a sample's text. A folder whose config.json differs in one of these holds another task's samples;
# n, start_idx and end_idx may change (a run with more samples or problems completes the folder).
IDENTITY = ("base_model", "chat_template_name", "system_prompt_name", "prefix_prompt_name", "suffix_prompt_name",
            "data_id", "split", "subset", "bf16", "fp16", "max_model_len", "max_tokens", "engine_max_model_len",
            "temperature", "top_p", "top_k", "repetition_penalty", "seed", "choices_key")


def check(opts, where):
    """Every problem with a complete set of options at once, one line each, in the config's wording."""
    errors = []

    def bad(key, msg):
        errors.append(f"{where}: key '{key}' {msg}")

    for name in REQUIRED:
        if not opts.get(name):
            errors.append(f"{where}: missing required key '{name}'")
    if not opts.get("data_id") and not opts.get("data_dir"):
        errors.append(f"{where}: missing required key 'data_id' (or data_dir pointing at a local .jsonl)")
    for key in ("n", "max_model_len", "tensor_parallel_size", "max_inflight_per_server", "max_tokens",
                "engine_max_model_len"):
        if opts[key] is not None and opts[key] < 1:
            bad(key, f"must be at least 1, got {opts[key]}")
    if opts["temperature"] < 0:
        bad("temperature", f"must be 0 or more, got {opts['temperature']}")
    if not 0 < opts["top_p"] <= 1:
        bad("top_p", f"must be in (0, 1], got {opts['top_p']}")
    if opts["top_k"] < -1:
        bad("top_k", f"must be -1 (off) or more, got {opts['top_k']}")
    if opts["repetition_penalty"] <= 0:
        bad("repetition_penalty", f"must be positive, got {opts['repetition_penalty']}")
    if not 0 < opts["gpu_memory_utilization"] <= 1:
        bad("gpu_memory_utilization", f"must be in (0, 1], got {opts['gpu_memory_utilization']}")
    if opts["bf16"] and opts["fp16"]:
        bad("fp16", "and bf16 are both set; choose one")
    start, end = opts["start_idx"], opts["end_idx"]
    if start is not None and start < 0:
        bad("start_idx", f"must be 0 or more, got {start}")
    if start is not None and end is not None and end <= start:
        bad("end_idx", f"({end}) must be greater than start_idx ({start})")
    for name, table in (("system_prompt_name", SYSTEM_PROMPTS), ("prefix_prompt_name", PREFIX_PROMPTS),
                        ("suffix_prompt_name", SUFFIX_PROMPTS)):
        if opts[name] not in table:
            bad(name, f"{opts[name]!r} is unknown; known: {', '.join(table)}")
    problem = template_problem(opts)
    if problem:
        bad("chat_template_name", problem)
    data_id = opts.get("data_id")
    if data_id and data_id not in DATASETS and not opts.get("data_dir") and not looks_local(data_id):
        bad("data_id", f"{data_id!r} is unknown; known: {', '.join(DATASETS)}; or give data_dir / a path to a "
                       "local .jsonl")
    if opts["api_key_env"] and not os.environ.get(opts["api_key_env"]):
        bad("api_key_env", f"names the environment variable {opts['api_key_env']}, which is not set")
    return errors


def resolve(raw, where_of, where):
    """Options from a mapping of given values (a YAML block or parsed flags): typed, defaulted and checked.

    where_of(key) names each key's place for type errors; `where` names the whole for cross-key checks.
    """
    errors = check_fields(raw, OPTIONS, where_of, required=False)
    if errors:
        raise ConfigError("\n".join(errors))
    opts = with_defaults({k: v for k, v in raw.items() if v is not None}, OPTIONS, where)
    errors = check(opts, where)
    if errors:
        raise ConfigError("\n".join(errors))
    return opts


def parse_args(argv=None, description=None):
    """eval.py's flags: one per option, each typed by the schema; returns the checked options."""
    parser = argparse.ArgumentParser(prog="eval.py", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    seed = parser.add_argument_group("the seed evaluator's options")
    ours = parser.add_argument_group("this project's additions")
    for name, field in OPTIONS.items():
        group = ours if field.help.startswith("ours:") else seed
        shown = field.help + (f" [default: {field.default}]" if field.default is not None else "")
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        if field.kind == "bool":  # `--bf16` alone, or `--bf16 True` as the seed's scripts write it
            group.add_argument(*flags, dest=name, nargs="?", const="True", default=None, help=shown)
        else:
            group.add_argument(*flags, dest=name, default=None, metavar=name.upper(), help=shown)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = vars(parser.parse_args(argv))
    debug = args.pop("debug")
    raw = {name: from_text(name, OPTIONS[name], text) for name, text in args.items() if text is not None}
    return resolve(raw, lambda key: "command line", "command line"), debug
