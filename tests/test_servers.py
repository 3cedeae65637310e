"""vllm_start.py: server groups, commands and environments per device, and a server that dies while starting."""

import pytest
from conftest import free_port, run_script, write_yaml

from reasonlite import config, servers


def cfg_from(tmp_path, **keys):
    base = {"model_path": "/models/gpt-oss-120b", "base_data_path": "datas/x"}
    return config.load(str(write_yaml(tmp_path / "c.yaml", {**base, **keys})))


def test_one_server_per_group_of_tp_gpus(tmp_path):
    cfg = cfg_from(tmp_path, gpu_index=[0, 1, 2, 3, 4, 5, 6, 7], tp=2)
    assert servers.groups(cfg) == [(8040, [0, 1]), (8042, [2, 3]), (8044, [4, 5]), (8046, [6, 7])]
    cfg = cfg_from(tmp_path, gpu_index=[4, 5], tp=1, port_base=9000, ip=["10.0.0.1", "10.0.0.2"])
    assert servers.client_urls(cfg) == ["http://10.0.0.1:9004", "http://10.0.0.1:9005",
                                        "http://10.0.0.2:9004", "http://10.0.0.2:9005"]


def test_data_parallel_server_spans_tp_times_dp_gpus(tmp_path):
    cfg = cfg_from(tmp_path, gpu_index=[0, 1, 2, 3, 4, 5, 6, 7], tp=2, dp=4, device="cuda")
    assert servers.groups(cfg) == [(8040, [0, 1, 2, 3, 4, 5, 6, 7])]
    argv, env = servers.server_command(cfg, 8040, list(range(8)), "cuda", tmp_path)
    assert argv[argv.index("--data-parallel-size") + 1] == "4" and argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"


def test_cuda_command(tmp_path):
    cfg = cfg_from(tmp_path, gpu_index=[2, 3], tp=2, gpu=0.9, max_model_len=40000, device="cuda",
                   vllm_args=["--data-parallel-size", "1"], vllm_env={"NCCL_DEBUG": "WARN"})
    argv, env = servers.server_command(cfg, 8042, [2, 3], "cuda", tmp_path)
    assert isinstance(argv, list) and argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    flags = {a: b for a, b in zip(argv, argv[1:] + [""]) if a.startswith("--") and not b.startswith("--")}
    assert flags["--port"] == flags["--seed"] == "8042"
    assert flags["--host"] == "127.0.0.1"
    assert flags["--max-model-len"] == "40000" and flags["--gpu-memory-utilization"] == "0.9"
    assert flags["--tensor-parallel-size"] == "2"
    assert "--no-enable-prefix-caching" in argv and argv[-2:] == ["--data-parallel-size", "1"]
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["NCCL_DEBUG"] == "WARN"
    assert "HIP_VISIBLE_DEVICES" not in env and "VLLM_ROCM_USE_AITER" not in env


def test_rocm_command_sets_aiter_and_hip_devices(tmp_path):
    cfg = cfg_from(tmp_path, gpu_index=[0, 1], device="rocm")
    _, env = servers.server_command(cfg, 8041, [1], "rocm", tmp_path)
    assert env["HIP_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["VLLM_ROCM_USE_AITER"] == "1" and env["VLLM_USE_AITER_UNIFIED_ATTENTION"] == "1"
    assert env["VLLM_ROCM_USE_AITER_MHA"] == "0"


def test_cpu_command(tmp_path):
    cfg = cfg_from(tmp_path, device="cpu", cpu_kvcache_gb=2)
    argv, env = servers.server_command(cfg, 8040, [0], "cpu", tmp_path)
    assert "--no-enable-chunked-prefill" in argv and "--gpu-memory-utilization" not in argv
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2" and env["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path))
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_api_key_travels_in_the_environment_not_argv(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "s3cret")
    cfg = cfg_from(tmp_path, api_key_env="MY_KEY", device="cpu")
    argv, _ = servers.server_command(cfg, 8040, [0], "cpu", tmp_path)
    assert "s3cret" not in " ".join(argv)
    assert config.api_key(cfg) == "s3cret"


@pytest.mark.slow
def test_a_server_that_dies_while_starting_is_reported_with_its_log(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", {
        "model_path": str(tmp_path / "no-such-model"), "device": "cpu", "port_base": free_port(),
        "run_dir": str(tmp_path / "run"), "base_data_path": "datas/x", "server_start_timeout": 300})
    proc = run_script("vllm_start.py", "-c", cfg, timeout=330)
    assert proc.returncode == 1
    assert "exited while starting; last lines of" in proc.stderr
    assert len(proc.stderr.splitlines()) > 2  # the log tail follows
    assert not list((tmp_path / "run").glob("server_*.json"))  # nothing left to --stop


def test_stop_with_nothing_started(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", {"model_path": "m", "base_data_path": "d", "run_dir": str(tmp_path)})
    proc = run_script("vllm_start.py", "-c", cfg, "--stop")
    assert proc.returncode == 0 and "no servers recorded" in proc.stdout
