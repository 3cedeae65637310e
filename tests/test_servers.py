"""vllm_start.py: server groups, commands and environments per device, the stagger, and a server that dies while
starting. The environment is devices.process_env's, which eval/start.py uses for its tasks too."""
import resource
import subprocess
import sys
import time

import pytest
from conftest import free_port, run_script, write_yaml

from reasonlite import config, devices, servers, vllm_flags
from reasonlite.evaluation import tasks as eval_tasks
from reasonlite.signals import GracefulStop, Stopped

NEW = vllm_flags.for_version("0.32.0")
OLD = vllm_flags.for_version("0.1.dev8023+g894bed8")  # the seed's ROCm image
VISIBILITY = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "VLLM_ROCM_USE_AITER", "VLLM_ROCM_USE_AITER_MHA",
              "VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION", "VLLM_USE_AITER_UNIFIED_ATTENTION", "VLLM_CACHE_ROOT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No inherited GPU or AITER variable from the machine running the tests, unless a test sets one."""
    for var in VISIBILITY:
        monkeypatch.delenv(var, raising=False)


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
    for features, unified in ((NEW, "VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION"),
                              (OLD, "VLLM_USE_AITER_UNIFIED_ATTENTION")):
        _, env = servers.server_command(cfg, 8041, [1], "rocm", tmp_path, features)
        assert env["HIP_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == "1"
        assert env["VLLM_ROCM_USE_AITER"] == "1" and env[unified] == "1" and env["VLLM_ROCM_USE_AITER_MHA"] == "0"
        other = ({"VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION", "VLLM_USE_AITER_UNIFIED_ATTENTION"} - {unified}).pop()
        assert other not in env  # the name this vLLM does not read is not set


def test_rocm_keeps_what_the_user_exported(tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_ROCM_USE_AITER_MHA", "1")
    monkeypatch.setenv("VLLM_USE_AITER_UNIFIED_ATTENTION", "0")  # the old release's name, on a new vLLM
    cfg = cfg_from(tmp_path, device="rocm", vllm_env={"VLLM_ROCM_USE_AITER": "0"})
    _, env = servers.server_command(cfg, 8040, [0], "rocm", tmp_path, NEW)
    assert env["VLLM_ROCM_USE_AITER_MHA"] == "1"  # exported: kept
    assert env["VLLM_ROCM_USE_AITER_UNIFIED_ATTENTION"] == "0"  # exported under the other name: kept, renamed
    assert env["VLLM_ROCM_USE_AITER"] == "0"  # the config's vllm_env wins over the seed's value


def test_visible_devices_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "5")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    cfg = cfg_from(tmp_path, gpu_index=[2, 3], tp=2)
    _, env = servers.server_command(cfg, 8042, [2, 3], "rocm", tmp_path, NEW)
    assert env["HIP_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == "2,3"
    _, env = servers.server_command(cfg, 8042, [2, 3], "cuda", tmp_path, NEW)
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and "HIP_VISIBLE_DEVICES" not in env
    # The evaluator's tasks get theirs from the same function.
    task = {"options": {"server_url": None}}
    env = eval_tasks.task_env(task, ["6"], "rocm", {"HIP_VISIBLE_DEVICES": "0"}, tmp_path)
    assert env["HIP_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == "6"
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path)) and env["VLLM_ROCM_USE_AITER"] == "1"


def test_a_vllm_cache_per_server(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_TORCH_COMPILE_CACHE_DIR", raising=False)
    cfg = cfg_from(tmp_path, gpu_index=[0, 1], device="cuda")
    roots = set()
    for port, group in servers.groups(cfg):
        _, env = servers.server_command(cfg, port, group, "cuda", tmp_path, NEW)
        assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path)) and str(port) in env["VLLM_CACHE_ROOT"]
        assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(env["VLLM_CACHE_ROOT"])
        assert "VLLM_TORCH_COMPILE_CACHE_DIR" not in env  # read by no vLLM
        roots.add(env["VLLM_CACHE_ROOT"])
    assert len(roots) == 2
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "mine"))  # the user's cache root stays the parent
    _, env = servers.server_command(cfg, 8040, [0], "cuda", tmp_path, NEW)
    assert env["VLLM_CACHE_ROOT"].startswith(str(tmp_path / "mine") + "/")


def test_the_open_files_limit_is_raised(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256 if hard == resource.RLIM_INFINITY else min(256, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        cfg = cfg_from(tmp_path, device="cuda")
        _, env = servers.server_command(cfg, 8040, [0], "cuda", tmp_path, NEW)
        raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = devices.OPEN_FILES if hard == resource.RLIM_INFINITY else min(devices.OPEN_FILES, hard)
        assert raised == want > low or hard == low
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_stagger_defaults_and_waits(tmp_path):
    assert servers.stagger_seconds(cfg_from(tmp_path, device="cuda"), "rocm") == 30
    assert servers.stagger_seconds(cfg_from(tmp_path, device="cpu"), "cpu") == 0
    assert servers.stagger_seconds(cfg_from(tmp_path, server_stagger=5), "cuda") == 5
    # A first "server" that lives but never answers /health holds the others back for the whole stagger ...
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        first = {"pid": proc.pid, "host": "127.0.0.1", "port": free_port()}
        t0 = time.monotonic()
        servers._stagger(first, 1.5, None, lambda msg: None, GracefulStop())
        assert 1.4 <= time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()
    # ... and one that died ends it at once (the wait for /health then reports its log).
    t0 = time.monotonic()
    servers._stagger(first, 30, None, lambda msg: None, GracefulStop())
    assert time.monotonic() - t0 < 3
    # ... and a stop asked for (SIGTERM to the launcher) ends it too, by Stopped, which start() turns into stopping
    # the servers it started
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stop = GracefulStop()
        stop.requested = True
        with pytest.raises(Stopped):
            servers._stagger({"pid": proc.pid, "host": "127.0.0.1", "port": free_port()}, 30, None,
                             lambda msg: None, stop)
    finally:
        proc.kill()
        proc.wait()


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
