"""Bad input to infer.py: one clear error line naming file, line and field; exit 1; no output folder."""
import json

import pytest
from conftest import run_script, write_info, write_yaml

PROBLEM = {"prompt": "What is 1 + 1?", "expected_answer": "2", "index": "b:0"}


@pytest.fixture
def exp(tmp_path):
    base = tmp_path / "exp"
    cfg = write_yaml(tmp_path / "c.yaml", {"model_path": "unused", "base_data_path": str(base),
                                           "prompt_format": "harmony", "port_base": 1,
                                           "server_start_timeout": 1})
    return base, cfg


def one_error(proc):
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
    return errors[0]


def assert_no_output(base):
    assert not (base / "answer_origin").exists()


def test_missing_info_file(exp):
    base, cfg = exp
    err = one_error(run_script("infer.py", "-c", cfg, "-m", "infer"))
    assert err == f"error: {base / 'info.jsonl'}: info file not found (base_data_path + data_info_name)"
    assert_no_output(base)


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "x", "index": "b:1"', ":2: not valid JSON"),
    ('["not", "an", "object"]', ":2: expected a JSON object, got list"),
    ('{"expected_answer": "3", "index": "b:1"}', ":2: field 'prompt' is missing or not a non-empty string"),
    ('{"prompt": 5, "index": "b:1"}', ":2: field 'prompt' is missing or not a non-empty string"),
    ('{"prompt": "y", "index": "b:0"}', ":2: field 'index' repeats an earlier index 'b:0'"),
])
def test_malformed_info_line(exp, line, message):
    base, cfg = exp
    write_info(base, [PROBLEM])
    with open(base / "info.jsonl", "a") as f:
        f.write(line + "\n")
    err = one_error(run_script("infer.py", "-c", cfg, "-m", "infer"))
    assert err.startswith(f"error: {base / 'info.jsonl'}{message}")
    assert_no_output(base)


def test_non_utf8_info(exp):
    base, cfg = exp
    base.mkdir()
    (base / "info.jsonl").write_bytes(json.dumps(PROBLEM).encode() + b"\n" + b'{"prompt": "\xff\xfe"}\n')
    assert ":2: not valid UTF-8" in one_error(run_script("infer.py", "-c", cfg, "-m", "infer"))


def test_misspelled_config_key(exp, tmp_path):
    base, _ = exp
    cfg = write_yaml(tmp_path / "bad.yaml", {"model_path": "m", "base_data_path": str(base), "num_answers": 4})
    err = one_error(run_script("infer.py", "-c", cfg, "-m", "infer"))
    assert err == f"error: {cfg}:3: unknown key 'num_answers' (did you mean 'num_answer'?)"


def test_unknown_mode(exp):
    _, cfg = exp
    proc = run_script("infer.py", "-c", cfg, "-m", "vot")
    assert proc.returncode == 2 and "invalid choice: 'vot'" in proc.stderr


def test_bad_shard_and_folder_name(exp):
    base, cfg = exp
    write_info(base, [PROBLEM])
    assert "the rank must be in 0..1" in one_error(run_script("infer.py", "-c", cfg, "-l", "2", "-g", "2"))
    assert "a run folder name is" in one_error(run_script("infer.py", "-c", cfg, "-s", "../escape"))
    assert_no_output(base)
