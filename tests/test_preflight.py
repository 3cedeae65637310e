"""--check: every shipped config passes on this CPU machine, a faked 8-GPU ROCm node shows the GPU commands, and each
kind of problem is one line and exit 1. Nothing is started and no request is sent.

The fast tests call the preflight in-process (vLLM is imported once); the slow ones run the three entry scripts.
"""
import argparse
import resource
import socket
from pathlib import Path

import pytest
from conftest import ROOT, run_script, write_info, write_yaml

from reasonlite import config, preflight
from reasonlite.evaluation import tasks as eval_tasks

CONFIGS = sorted((ROOT / "config").glob("*.yaml"))
EVAL_CONFIGS = sorted((ROOT / "eval" / "config").glob("*.yaml"))


@pytest.fixture(autouse=True)
def no_inherited_gpus(monkeypatch):
    for var in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "REASONLITE_FAKE_GPUS"):
        monkeypatch.delenv(var, raising=False)


def check(cfg, command="infer"):
    """(passed, printed lines, problems)."""
    lines = []
    try:
        preflight.check_pipeline(cfg, command, out=lines.append)
    except preflight.PreflightError as e:
        return False, lines, str(e).splitlines()
    return True, lines, []


def load(path, tmp_path, **keys):
    """A shipped config with some keys replaced (run_dir always under tmp_path: a check must not create it)."""
    raw = config.safe_load(Path(path).read_text(), str(path))
    raw.update({"run_dir": str(tmp_path / "run"), **keys})
    return config.load(str(write_yaml(tmp_path / Path(path).name, raw)))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: getattr(p, "name", p))
def test_every_shipped_config_passes_here(path, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the configs' relative paths (datas/, .cache/) are the repository's
    cfg = load(path, tmp_path)
    if cfg.device in ("cuda", "rocm"):
        monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    ok, lines, problems = check(cfg)
    assert ok, problems
    assert lines[-1] == "preflight: ok (nothing was started)"
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_faked_rocm_node_shows_the_gpu_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    monkeypatch.setenv("VLLM_ROCM_USE_AITER_MHA", "1")  # exported by the user: kept
    ok, lines, problems = check(load(ROOT / "config" / "oss_rocm.yaml", tmp_path, port_base=_free_base()), "serve")
    assert ok, problems
    text = "\n".join(lines)
    assert "rocm (from the config); 8 GPUs (faked by REASONLITE_FAKE_GPUS)" in text
    assert "--compilation-config" in text and "--max-num-seqs 1024" in text
    assert "CUDA_VISIBLE_DEVICES=7 HIP_VISIBLE_DEVICES=7" in text
    assert "VLLM_ROCM_USE_AITER=1" in text and "VLLM_ROCM_USE_AITER_MHA=1" not in text  # unchanged: not shown
    assert text.count("vllm.entrypoints.openai.api_server") == 8


def _free_base():
    """A port_base whose 8 ports are free now (the serve check refuses ports in use)."""
    for base in range(20000, 60000, 97):
        try:
            for port in range(base, base + 8):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no 8 free ports")


def test_missing_gpus_are_a_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONLITE_FAKE_GPUS", "4")
    ok, _, problems = check(load(ROOT / "config" / "oss_rocm.yaml", tmp_path))
    assert not ok and problems == ["GPU 4,5,6,7 named, but 4 are visible (ids 0-3, faked by REASONLITE_FAKE_GPUS)"]


def test_a_flag_vllm_refuses_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    cfg = load(ROOT / "config" / "oss.yaml", tmp_path, device="cuda", gpu_index=[0, 1],
               vllm_args=["--compilation-config", '{"full_cuda_graph": true}', "--no-such-flag"])
    ok, _, problems = check(cfg)
    assert not ok and len(problems) == 2 and all(p.startswith("server 804") for p in problems)


def test_certain_truncation_is_a_problem(tmp_path, tiny_model):
    data = write_info(tmp_path / "exp", [("t:0", "Compute " + "1 + " * 300 + "1.", "301")])
    base = {"model_path": str(tiny_model), "device": "cpu", "base_data_path": str(data), "run_dir": str(tmp_path / "r")}
    cfg = config.load(str(write_yaml(tmp_path / "a.yaml", {**base, "max_model_len": 4096, "max_tokens": 3000})))
    ok, lines, problems = check(cfg)
    assert ok, problems
    tokens = int(next(l for l in lines if "longest prompt" in l).split(", ")[1].split()[0])
    assert 300 < tokens < 1096
    cfg = config.load(str(write_yaml(tmp_path / "b.yaml", {**base, "max_model_len": tokens + 99, "max_tokens": 100})))
    ok, _, problems = check(cfg)
    assert not ok and problems[0].startswith(f"problem t:0: prompt {tokens} tokens + max_tokens 100 = {tokens + 100} > "
                                             f"max_model_len {tokens + 99}")
    cfg = config.load(str(write_yaml(tmp_path / "c.yaml", {**base, "max_model_len": tokens, "max_tokens": 1})))
    assert "vLLM refuses it" in check(cfg)[2][0]


def test_too_little_disk_and_too_few_files_are_problems(tmp_path):
    write_info(tmp_path / "exp", [("t:0", "What is 1 + 1?", "2")])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    inflight = 10 ** 6 if hard == resource.RLIM_INFINITY else hard + 1
    cfg = config.load(str(write_yaml(tmp_path / "c.yaml", {
        "model_path": "openai/gpt-oss-120b", "device": "cpu", "base_data_path": str(tmp_path / "exp"),
        "num_answer": 10 ** 9, "max_inflight_per_server": inflight})))
    ok, _, problems = check(cfg)
    assert not ok
    assert any("if every answer reaches its token limit" in p for p in problems)
    if hard != resource.RLIM_INFINITY:
        assert any(p.startswith("the open-files limit is") for p in problems)


@pytest.mark.parametrize("path", EVAL_CONFIGS, ids=lambda p: p.name)
def test_every_eval_config_passes_here(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT / "eval")  # start.py runs from eval/, where the YAMLs' relative paths point
    args = argparse.Namespace(config_path=str(path), gpu_index=None, run_name="check",
                              result_dir=str(tmp_path / "result"), check=True, debug=False)
    eval_tasks.start(args)
    out = capsys.readouterr().out
    assert out.rstrip().endswith("preflight: ok (nothing was started)")
    assert "-m reasonlite.evaluation.evaluate" in out
    assert not (tmp_path / "result").exists()


@pytest.mark.slow
def test_the_three_commands(tmp_path):
    """vllm_start.py, infer.py and eval/start.py with --check, as a user runs them: exit 0, or 1 with error lines."""
    env = {"REASONLITE_FAKE_GPUS": "8"}
    cfg = load(ROOT / "config" / "oss_rocm.yaml", tmp_path, port_base=_free_base(),
               base_data_path=str(ROOT / "datas" / "example"))
    for script in ("vllm_start.py", "infer.py"):
        proc = run_script(script, "-c", cfg.path, "--check", env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.rstrip().endswith("preflight: ok (nothing was started)")
    proc = run_script("eval/start.py", "-c", ROOT / "eval" / "config" / "eval.yaml", "--check",
                      "--result_dir", tmp_path / "result")
    assert proc.returncode == 0, proc.stderr
    env["REASONLITE_FAKE_GPUS"] = "2"
    proc = run_script("vllm_start.py", "-c", cfg.path, "--check", env=env)
    assert proc.returncode == 1
    assert [l for l in proc.stderr.splitlines() if l.startswith("error:")] == [
        "error: GPU 2,3,4,5,6,7 named, but 2 are visible (ids 0-1, faked by REASONLITE_FAKE_GPUS)"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", ["oss.yaml", "oss_rocm.yaml"])
def test_check_says_which_request_path_the_servers_get(path, tmp_path, monkeypatch):
    """The seed's configs: plain bodies watched by vLLM's counters, with the installed vLLM named; with the
    counters turned off, streamed requests and their timeouts instead."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    _, lines, _ = check(load(ROOT / "config" / path, tmp_path), "serve")
    [line] = [x for x in lines if "request path of every server:" in x]
    version = preflight.vllm_flags.installed().version
    assert "plain JSON bodies" in line and "/metrics" in line and f"vLLM {version} exports them" in line
    _, lines, _ = check(load(ROOT / "config" / path, tmp_path, vllm_args=["--disable-log-stats"],
                             stream_interval=64), "serve")
    [line] = [x for x in lines if "request path of every server:" in x]
    assert line.strip().startswith("request path of every server: streamed requests, stream_interval 64 tokens")
    assert "--disable-log-stats turns off the counters" in line


def test_request_plan_follows_the_vllm_release():
    old, new = preflight.vllm_flags.for_version("0.10.1"), preflight.vllm_flags.for_version("0.32.0")
    assert "one chunk per token (vLLM 0.10.1 has no stream_interval)" in preflight.request_plan(
        "stream", old, stream_interval=64)
    assert "stream_interval 64 tokens per chunk" in preflight.request_plan("stream", new, stream_interval=64)
    assert "/metrics" in preflight.request_plan("auto", old) and "0.10.1 exports them" in preflight.request_plan(
        "auto", old)
    assert "from /health only" in preflight.request_plan("plain", new, ["--disable-log-stats"])
    assert preflight.request_plan("auto", new, ours=False).startswith("chosen per server when first used")
