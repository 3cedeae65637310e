"""The project's one config mechanism: YAML checked against a schema of Fields.

Every key a command reads is declared with its type and default (SCHEMA here for the pipeline, OPTIONS in
reasonlite/evaluation/options.py for the evaluator), so a misspelled key is an error that names the key, its line
and the closest known key, never a silently ignored setting. All bad keys of a file are reported together, one per
line and in one wording (`file:line: key 'x' must be ...`), so a user fixes a config in one pass. The trainer reads
its YAML with trl's own parser and reports its leftovers through `unknown_key` too.
"""
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file the pipeline cannot run with; the message names the file and the key."""


REQUIRED = object()


@dataclass(frozen=True)
class Field:
    kind: str  # str, name, int, float, bool, list[int], list[str], dict[str,str], or "a|b|c" for a choice
    default: Any = None
    nullable: bool = False
    help: str = ""


SEED_STOP = ["<|endoftext|>", "<|return|>"]

# The pipeline config (config/oss.yaml). Seed keys first, then the ones this project adds.
SCHEMA = {
    # --- servers (seed) ---
    "model_path": Field("str", REQUIRED),
    "gpu_index": Field("list[int]", [0]),
    "tp": Field("int", 1),
    "dp": Field("int", 1),  # vLLM data parallel ranks inside one server (one port for tp * dp devices)
    "gpu": Field("float", 0.95),  # vLLM --gpu-memory-utilization
    "ip": Field("list[str]", ["127.0.0.1"]),  # hosts the clients send to; one entry per node
    # --- servers (ours) ---
    "device": Field("auto|cuda|rocm|cpu", "auto"),
    "host": Field("str", "127.0.0.1"),  # address the servers bind to; 0.0.0.0 only where nodes must reach them
    "port_base": Field("int", 8040),
    "max_model_len": Field("int", 32768),
    "vllm_args": Field("list[str]", []),
    "vllm_env": Field("dict[str,str]", {}),
    "api_key_env": Field("str", None, nullable=True),
    "run_dir": Field("str", "runs/vllm"),
    "server_start_timeout": Field("float", 1800.0),
    "cpu_kvcache_gb": Field("int", 1),
    # --- GPU path (#10) ---
    "full_cuda_graph": Field("bool", False),  # full CUDA graphs, spelled for the installed vLLM (vllm_flags.py)
    "max_num_seqs": Field("int", None, nullable=True),  # vLLM --max-num-seqs: sequences a server runs at once
    # vLLM --stream-interval on the servers we start (0.11.1+; left out before), and the request's own where a
    # request is streamed (request_path); plain bodies, the default, need neither
    "stream_interval": Field("int", None, nullable=True),
    "server_stagger": Field("float", None, nullable=True),  # seconds after the first server; default 30 GPU, 0 CPU
    # --- generation (seed) ---
    "mode": Field("infer|vote|judge|judge_vote", "infer"),
    "wait_servers_up": Field("bool", True),
    "base_data_path": Field("str", REQUIRED),
    "data_info_name": Field("str", "info.jsonl"),
    "new_data_name": Field("str", None, nullable=True),  # the seed's: write into this folder, not the mode's
    "num_answer": Field("int", 8),
    "reasoning_level": Field("low|medium|high", "medium"),
    "max_tokens": Field("int", 32000),
    "temperature": Field("float", 0.8),
    "top_p": Field("float", 1.0),
    "batch_size": Field("int", None, nullable=True),  # the seed's name for max_inflight_per_server
    # --- generation (ours) ---
    "prompt_format": Field("auto|harmony|chat_template", "auto"),
    "tokenizer_path": Field("str", None, nullable=True),
    "stop": Field("list[str]", SEED_STOP),
    # Requests in flight per server; default: what the server runs at once (max_num_seqs x dp), else 256. More would
    # only wait in vLLM's queue, where the first-token timeout runs.
    "max_inflight_per_server": Field("int", None, nullable=True),
    # auto: plain JSON bodies where a server's /metrics has vLLM's counters (liveness read from them), streamed
    # requests where it has none; plain | stream force one path (reasonlite/client.py says why plain by default).
    "request_path": Field("auto|plain|stream", "auto"),
    "request_timeout": Field("float", None, nullable=True),  # a cap on one attempt in total; none by default
    "first_token_timeout": Field("float", 1800.0),  # streamed requests: seconds from sending to the first token
    # seconds a server may go without counting a token while requests of ours are on it (a streamed request: without
    # a chunk) before they are retried elsewhere
    "stall_timeout": Field("float", 600.0),
    "drain_timeout": Field("float", 25.0),  # on SIGTERM: seconds to wait for answers in flight (Slurm waits 30)
    "max_retries": Field("int", 5),
    "retry_backoff": Field("float", 1.0),  # seconds before the first retry; doubles each time, up to 60
    "server_down_timeout": Field("float", 1800.0),
    "flush_every": Field("int", 64),
    # --- labels (vote, judge, judge_vote) ---
    "vote_backend": Field("rule|llm", "rule"),
    "judge_backend": Field("rule|llm|hybrid", "hybrid"),
    "vote_ratio": Field("float", 0.9),  # the seed's rule for trusting a pseudo-label
    "min_vote": Field("int", 4),
    "grader_workers": Field("int", None, nullable=True),  # default: up to 4, by CPU count
    "grader_timeout": Field("float", 5.0),
    # --- adaptive sampling (#14) ---
    # `sampling: adaptive` under -m infer draws answers in rounds per problem and stops drawing for a problem once
    # it has as many correct answers as its target (which grows with its difficulty, from min_correct to
    # target_correct), has max_answers answers, or (without expected_answer) its vote can no longer meet the
    # vote_ratio/min_vote rule (reasonlite/adaptive.py). `fixed` draws num_answer, as the seed.
    "sampling": Field("fixed|adaptive", "fixed"),
    # max_answers sets the budget: in bench/adaptive_sampling.py's simulations, 40 to 100 spent what fixed 32 did,
    # depending on how much longer the hard problems' answers are than the easy ones'.
    "first_round": Field("int", 4),  # answers per problem in its first round
    "round_size": Field("int", 4),  # answers per problem in each later round
    "target_correct": Field("int", 32),  # correct answers wanted from the hardest problems
    "min_correct": Field("int", 4),  # correct answers wanted from the easiest (= target_correct: one flat target)
    "max_answers": Field("int", 48),  # answers after which a problem is closed, correct or not
    # A judged problem with no correct answer after this many closes (null: it draws up to max_answers): a wrong
    # expected_answer, or a problem beyond the teacher, costs no more than this many of its longest answers.
    "give_up_after": Field("int", None, nullable=True),
}


def _type_ok(kind, value):
    if kind == "str":
        return isinstance(value, str)
    if kind == "name":  # a string that YAML may have read as a number (`split: 2024`)
        return isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list[int]":
        return isinstance(value, list) and all(_type_ok("int", v) for v in value)
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "dict[str,str]":
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, (str, int, float))
                                               for k, v in value.items())
    return value in kind.split("|")


def describe(kind):
    if "|" in kind:
        return "one of " + ", ".join(kind.split("|"))
    return {"str": "a string", "name": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
            "list[int]": "a list of integers", "list[str]": "a list of strings",
            "dict[str,str]": "a mapping of names to strings"}[kind]


def unknown_key(where, key, known):
    """The one wording of an unknown key, with the closest known key as a hint."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    return f"{where}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")


def check_fields(raw, schema, where_of, required=True):
    """Every unknown key, value of the wrong type and missing required key of a mapping, one line each.

    where_of(key) names the place (`file:line`), so a file, a block of a file and a command line read alike.
    """
    errors = []
    for key, value in raw.items():
        where = where_of(key)
        if key not in schema:
            errors.append(unknown_key(where, key, schema))
            continue
        field = schema[key]
        if value is None and field.nullable:
            continue
        if not _type_ok(field.kind, value):
            errors.append(f"{where}: key '{key}' must be {describe(field.kind)}, got {value!r}")
    if required:
        for key, field in schema.items():
            if field.default is REQUIRED and raw.get(key) is None:
                errors.append(f"{where_of(None)}: missing required key '{key}'")
    return errors


def with_defaults(raw, schema, path):
    """A Config of raw's values over the schema's defaults (`name` kinds read as strings)."""
    cfg = Config({k: (f.default if f.default is not REQUIRED else None) for k, f in schema.items()})
    cfg.update({k: (str(v) if schema[k].kind == "name" and v is not None else v) for k, v in raw.items()})
    cfg.path = path
    return cfg


def from_text(key, field, text):
    """A value typed on a command line (`--n 16`, `--bf16 True`) as the schema's kind; ConfigError if it is not."""
    kind = field.kind
    try:
        if kind == "bool":
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            value = words[text.strip().lower()]
        elif kind == "int":
            value = int(text)
        elif kind == "float":
            value = float(text)
        elif kind in ("str", "name") or "|" in kind:
            value = text
        else:
            raise KeyError(kind)  # lists and mappings are not typed on a command line
    except (KeyError, ValueError):
        raise ConfigError(f"command line: key '{key}' must be {describe(kind)}, got {text!r}") from None
    if not _type_ok(kind, value):
        raise ConfigError(f"command line: key '{key}' must be {describe(kind)}, got {text!r}")
    return value


class Config(dict):
    """A validated config: a dict with attribute access, plus the path it came from for error messages."""

    path = "<config>"

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def _line_map(node):
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def key_lines(text):
    """Line numbers of the top-level keys, so an error can point at the line to fix."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    return _line_map(node) if isinstance(node, yaml.MappingNode) else {}


def block_key_lines(text, list_key=None):
    """[{key: line}] of each mapping of a top-level list (or of the list under `list_key` of a mapping)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if list_key is not None and isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == list_key), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [_line_map(b) if isinstance(b, yaml.MappingNode) else {} for b in node.value]


def read_yaml(path):
    """(text, parsed value) of a YAML file; ConfigError naming the file (and line) if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return text, safe_load(text, path)


def safe_load(text, path):
    """yaml.safe_load, with a syntax error as a ConfigError naming the file and line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem})") from None


def parse(text, path, schema=None):
    """Validate YAML text against a schema and return a Config with every default filled in."""
    schema = SCHEMA if schema is None else schema
    raw = safe_load(text, path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    lines = key_lines(text)
    errors = check_fields(raw, schema, lambda key: f"{path}:{lines[key]}" if key in lines else path)
    if errors:
        raise ConfigError("\n".join(errors))
    return with_defaults(raw, schema, path)


def _check_pipeline(cfg):
    errors = []

    def bad(key, msg):
        errors.append(f"{cfg.path}: key '{key}' {msg}")

    if not cfg.gpu_index:
        bad("gpu_index", "must list at least one device")
    if cfg.tp < 1 or cfg.dp < 1 or len(cfg.gpu_index) % (cfg.tp * cfg.dp):
        bad("tp", f"times dp must divide the {len(cfg.gpu_index)} devices of gpu_index into equal groups, "
                  f"got tp {cfg.tp} and dp {cfg.dp}")
    if not 0 < cfg.gpu <= 1:
        bad("gpu", f"is a memory fraction in (0, 1], got {cfg.gpu}")
    if not 1 <= cfg.port_base <= 65535 - max(cfg.gpu_index, default=0):
        bad("port_base", f"gives ports outside 1-65535, got {cfg.port_base}")
    for key in ("num_answer", "max_tokens", "max_model_len", "flush_every", "cpu_kvcache_gb"):
        if cfg[key] < 1:
            bad(key, f"must be at least 1, got {cfg[key]}")
    for key in ("max_inflight_per_server", "batch_size", "max_num_seqs", "stream_interval"):
        if cfg[key] is not None and cfg[key] < 1:
            bad(key, f"must be at least 1, got {cfg[key]}")
    if cfg.server_stagger is not None and cfg.server_stagger < 0:
        bad("server_stagger", f"must be 0 or more, got {cfg.server_stagger}")
    if not 0 < cfg.vote_ratio <= 1:
        bad("vote_ratio", f"is a share of the votes in (0, 1], got {cfg.vote_ratio}")
    if cfg.min_vote < 1:
        bad("min_vote", f"must be at least 1, got {cfg.min_vote}")
    if cfg.grader_workers is not None and cfg.grader_workers < 1:
        bad("grader_workers", f"must be at least 1, got {cfg.grader_workers}")
    if cfg.grader_timeout <= 0:
        bad("grader_timeout", f"must be positive, got {cfg.grader_timeout}")
    for key in ("first_round", "round_size", "target_correct", "min_correct", "max_answers"):  # adaptive (#14)
        if cfg[key] < 1:
            bad(key, f"must be at least 1, got {cfg[key]}")
    if cfg.give_up_after is not None and cfg.give_up_after < 1:
        bad("give_up_after", f"must be at least 1 (or null: never), got {cfg.give_up_after}")
    if cfg.sampling == "adaptive" and cfg.min_correct > cfg.target_correct:
        bad("min_correct", f"must be at most target_correct ({cfg.target_correct}), got {cfg.min_correct}")
    if cfg.max_answers < cfg.first_round:
        bad("max_answers", f"must be at least first_round ({cfg.first_round}), got {cfg.max_answers}")
    for key in ("first_token_timeout", "stall_timeout"):
        if cfg[key] <= 0:
            bad(key, f"must be positive, got {cfg[key]}")
    if cfg.request_timeout is not None and cfg.request_timeout <= 0:
        bad("request_timeout", f"must be positive (or null: no cap), got {cfg.request_timeout}")
    if cfg.drain_timeout < 0:
        bad("drain_timeout", f"must be 0 or more, got {cfg.drain_timeout}")
    if cfg.retry_backoff < 0:
        bad("retry_backoff", f"must be 0 or more, got {cfg.retry_backoff}")
    if cfg.max_retries < 0:
        bad("max_retries", f"must be 0 or more, got {cfg.max_retries}")
    if cfg.temperature < 0:
        bad("temperature", f"must be 0 or more, got {cfg.temperature}")
    if not 0 < cfg.top_p <= 1:
        bad("top_p", f"must be in (0, 1], got {cfg.top_p}")
    if not cfg.ip:
        bad("ip", "must list at least one host")
    if cfg.new_data_name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cfg.new_data_name):
        bad("new_data_name", f"is a folder name (letters, digits, _ . -), got {cfg.new_data_name!r}")
    base = Path(cfg.base_data_path)
    if base.exists() and not base.is_dir():
        bad("base_data_path", f"is the experiment folder that holds {cfg.data_info_name} and the runs, but "
                              f"{base} is a file" + (f"; set it to {base.parent}" if base.name == cfg.data_info_name
                                                      else ""))
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        bad("api_key_env", f"names the environment variable {cfg.api_key_env}, which is not set")
    if errors:
        raise ConfigError("\n".join(errors))
    if cfg.batch_size is not None and cfg.max_inflight_per_server is None:  # the seed's name for it
        cfg["max_inflight_per_server"] = cfg.batch_size
    if cfg.max_inflight_per_server is None:
        cfg["max_inflight_per_server"] = cfg.max_num_seqs * cfg.dp if cfg.max_num_seqs else 256
    return cfg


def load(path, schema=None):
    """Read and validate a pipeline config file; raises ConfigError naming the file, line and key."""
    text, _ = read_yaml(path)
    cfg = parse(text, path, schema)
    return _check_pipeline(cfg) if schema is None else cfg


def info_path(cfg):
    """The problems file: base_data_path / data_info_name, normalized as text, so that `../example/info.jsonl` works
    before base_data_path exists (the first run makes it)."""
    return Path(os.path.normpath(Path(cfg.base_data_path) / cfg.data_info_name))


def api_key(cfg):
    """The API key the servers and clients share, read from the environment variable the config names."""
    return os.environ.get(cfg.api_key_env) if cfg.get("api_key_env") else None
