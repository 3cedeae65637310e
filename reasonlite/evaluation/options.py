"""The evaluator's options: one schema (reasonlite/config.py's Fields) for eval.py's flags and start.py's YAML blocks.

Names and meanings follow the seed's evaluator (DeepMath's uni_eval.py); options whose help starts with "ours" are
this project's additions. A YAML block and a command line are checked by the same rules and report problems in the
same wording as the pipeline's config (`file:line: key 'n' must be at least 1, got 0`).
"""
import argparse
import os
from pathlib import Path

from reasonlite.config import ConfigError, Field, check_fields, from_text, with_defaults
from reasonlite.evaluation.benchmarks import DATASETS, looks_local
from reasonlite.evaluation.prompting import PREFIX_PROMPTS, SUFFIX_PROMPTS, SYSTEM_PROMPTS

OPTIONS = {
    "base_model": Field("str", None, True, "model path or hub id; also the tokenizer whose chat template builds "
                                           "the prompt"),
    "chat_template_name": Field("str", "default", True, "`default` (the tokenizer's own) or a path to a .jinja "
                                                        "template"),
    "system_prompt_name": Field("str", "disabled", True, "one of: " + ", ".join(SYSTEM_PROMPTS)),
    "prefix_prompt_name": Field("str", "disabled", True, "one of: " + ", ".join(PREFIX_PROMPTS)),
    "suffix_prompt_name": Field("str", "disabled", True, "one of: " + ", ".join(SUFFIX_PROMPTS)),
    "output_dir": Field("str", None, True, "folder for config.json, generation.jsonl, result.log, metrics.json"),
    "bf16": Field("bool", False, True, "offline engine dtype bfloat16 (neither bf16 nor fp16: float32, as the seed)"),
    "fp16": Field("bool", False, True, "offline engine dtype float16"),
    "tensor_parallel_size": Field("int", 1, True, "GPUs per offline engine"),
    "enforce_eager": Field("bool", False, True, "offline engine without CUDA graphs / compilation"),
    "gpu_memory_utilization": Field("float", 0.8, True, "offline engine GPU memory share"),
    "data_dir": Field("str", None, True, "local data: a .jsonl file, or a folder holding <data_id> (save_to_disk "
                                         "or .jsonl)"),
    "data_id": Field("str", None, True, "one of " + ", ".join(DATASETS) + ", or a path to a local .jsonl"),
    "split": Field("name", None, True, "dataset split (default: the data_id's)"),
    "subset": Field("name", None, True, "dataset config name on the hub"),
    "start_idx": Field("int", None, True, "first problem (0-based, inclusive)"),
    "end_idx": Field("int", None, True, "last problem (exclusive)"),
    "max_model_len": Field("int", 32768, True, "context length: prompt plus generation"),
    "temperature": Field("float", 0.6, True, "sampling temperature"),
    "top_p": Field("float", 1.0, True, "nucleus sampling"),
    "top_k": Field("int", -1, True, "top-k sampling (-1: off)"),
    "repetition_penalty": Field("float", 1.0, True, "repetition penalty"),
    "n": Field("int", 1, True, "samples per problem"),
    "seed": Field("int", 42, True, "sample i of a problem uses seed + i"),
    # ours
    "max_tokens": Field("int", None, True, "ours: cap on generated tokens (default: what max_model_len leaves)"),
    "server_url": Field("str", None, True, "ours: OpenAI-compatible server(s), comma-separated; default: offline "
                                           "engine"),
    "api_key_env": Field("str", None, True, "ours: environment variable holding the servers' API key"),
    "max_inflight_per_server": Field("int", 64, True, "ours: requests in flight per server"),
    "problem_key": Field("str", None, True, "ours: column of the problem text (default: the data_id's)"),
    "answer_key": Field("str", None, True, "ours: column of the gold answer (default: the data_id's)"),
}
REQUIRED = ("base_model", "output_dir")
# What shapes a sample's text. A folder whose config.json differs in one of these holds another task's samples;
# n, start_idx and end_idx may change (a run with more samples or problems completes the folder).
IDENTITY = ("base_model", "chat_template_name", "system_prompt_name", "prefix_prompt_name", "suffix_prompt_name",
            "data_id", "split", "subset", "bf16", "fp16", "max_model_len", "max_tokens", "temperature", "top_p",
            "top_k", "repetition_penalty", "seed")


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
    for key in ("n", "max_model_len", "tensor_parallel_size", "max_inflight_per_server"):
        if opts[key] < 1:
            bad(key, f"must be at least 1, got {opts[key]}")
    if opts["max_tokens"] is not None and opts["max_tokens"] < 1:
        bad("max_tokens", f"must be at least 1, got {opts['max_tokens']}")
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
    template = opts["chat_template_name"]
    if template != "default" and not Path(template).is_file():
        bad("chat_template_name", f"{template!r} is neither `default` nor a template file")
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
    for name, field in OPTIONS.items():
        if field.kind == "bool":  # `--bf16` alone, or `--bf16 True` as the seed's scripts write it
            parser.add_argument(f"--{name}", nargs="?", const="True", default=None, help=field.help)
        else:
            parser.add_argument(f"--{name}", default=None, help=field.help)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = vars(parser.parse_args(argv))
    debug = args.pop("debug")
    raw = {name: from_text(name, OPTIONS[name], text) for name, text in args.items() if text is not None}
    return resolve(raw, lambda key: "command line", "command line"), debug
