"""The bad-input survey: each malformed input a user can hand the pipeline, and the one error line it gets.

The one table of bad input for infer.py and the conversion (the evaluator's is in test_eval.py, the trainer's in
test_train.py); docs/clusters-and-failures.md shows the new user's rows of it.

Each row: a name, the files to write (relative to a fresh experiment folder; bytes for non-UTF-8), the command, and
the exact error line ({d} stands for the folder). Every row must exit 1 with that one line on stderr and no new
output folder, and no row may need a server: input is checked before anything is sent or written.
"""
import json

import pytest
from conftest import run_script

CFG = "model_path: m\nbase_data_path: {d}/exp\nprompt_format: harmony\njudge_backend: rule\n"
INFO_OK = json.dumps({"prompt": "What is 1 + 1?", "expected_answer": "2", "index": "s:0"}) + "\n"


def origin(**fields):
    rec = {"info": {"prompt": "p", "expected_answer": "2", "index": "s:0"}, "index": "s:0_0", "model_input": "<p>",
           "model_output": "<p>a", "prompt": "p", "answer": "a"}
    rec.update(fields)
    return json.dumps({k: v for k, v in rec.items() if v is not ...}) + "\n"


ORIGIN = "exp/answer_origin/r1/0_1.jsonl"
INFER = ["infer.py", "-c", "{d}/c.yaml", "-m", "infer"]
JUDGE = ["infer.py", "-c", "{d}/c.yaml", "-m", "judge"]

SURVEY = [
    # ---- configs ----
    ("unknown key", {"c.yaml": CFG + "num_answers: 4\n"}, INFER,
     "error: {d}/c.yaml:5: unknown key 'num_answers' (did you mean 'num_answer'?)"),
    ("wrong type", {"c.yaml": CFG + "temperature: hot\n"}, INFER,
     "error: {d}/c.yaml:5: key 'temperature' must be a number, got 'hot'"),
    ("missing required key", {"c.yaml": "base_data_path: x\n"}, INFER,
     "error: {d}/c.yaml: missing required key 'model_path'"),
    ("YAML syntax", {"c.yaml": CFG + "gpu_index: [0, 1\n"}, INFER,
     "error: {d}/c.yaml:6: not valid YAML (expected ',' or ']', but got '<stream end>')"),
    ("not a mapping", {"c.yaml": "- model_path: m\n"}, INFER,
     "error: {d}/c.yaml: expected a mapping of keys to values at the top level"),
    ("config not UTF-8", {"c.yaml": CFG.encode() + b"# caf\xe9\n"}, INFER,
     "error: {d}/c.yaml: not UTF-8 text (byte 86)"),
    ("out of range", {"c.yaml": CFG + "vote_ratio: 1.5\n"}, INFER,
     "error: {d}/c.yaml: key 'vote_ratio' is a share of the votes in (0, 1], got 1.5"),
    ("api key variable unset", {"c.yaml": CFG + "api_key_env: NO_SUCH_VARIABLE_HERE\n"}, INFER,
     "error: {d}/c.yaml: key 'api_key_env' names the environment variable NO_SUCH_VARIABLE_HERE, which is not set"),
    # ---- info.jsonl lines ----
    ("info missing", {"c.yaml": CFG}, INFER,
     "error: {d}/exp/info.jsonl: info file not found (base_data_path + data_info_name)"),
    ("info not JSON", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK + '{"prompt": "x"\n'}, INFER,
     "error: {d}/exp/info.jsonl:2: not valid JSON (Expecting ',' delimiter at column 15)"),
    ("info not an object", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK + "42\n"}, INFER,
     "error: {d}/exp/info.jsonl:2: expected a JSON object, got int"),
    ("info not UTF-8", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK.encode() + b'{"prompt": "\xc3("}\n'}, INFER,
     "error: {d}/exp/info.jsonl:2: not valid UTF-8 (byte 12)"),
    ("info without prompt", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK + '{"index": "s:1"}\n'}, INFER,
     "error: {d}/exp/info.jsonl:2: field 'prompt' is missing or not a non-empty string"),
    ("info prompt not a string", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK + '{"prompt": 5, "index": "s:1"}\n'},
     INFER, "error: {d}/exp/info.jsonl:2: field 'prompt' is missing or not a non-empty string"),
    ("info index repeated", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK * 2}, INFER,
     "error: {d}/exp/info.jsonl:2: field 'index' repeats an earlier index 's:0'"),
    ("info empty", {"c.yaml": CFG, "exp/info.jsonl": "\n"}, INFER,
     "error: {d}/exp/info.jsonl: no problems in the file"),
    # ---- command-line arguments ----
    ("rank outside the shards", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK}, INFER + ["-l", "2", "-g", "2"],
     "error: -l 2 -g 2: the rank must be in 0..1"),
    ("run name with a path", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK}, INFER + ["-s", "../escape"],
     "error: -s '../escape': a run folder name is letters, digits and _ . : - (no path)"),
    # ---- records with missing fields (a line that is not JSON at all is damage, not this: see test_failures) ----
    ("no answer_origin run", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK}, JUDGE,
     "error: {d}/exp/answer_origin: no complete run folder; -m judge needs answer_origin: run `infer.py -m infer` "
     "first"),
    ("judge_vote before anything", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK},
     ["infer.py", "-c", "{d}/c.yaml", "-m", "judge_vote"],
     "error: {d}/exp/answer_origin: no complete run folder; -m judge_vote needs answer_origin and vote: run "
     "`infer.py -m infer`, then `infer.py -m vote` first"),
    ("judge_vote before vote", {"c.yaml": CFG, ORIGIN: origin()}, ["infer.py", "-c", "{d}/c.yaml", "-m", "judge_vote"],
     "error: {d}/exp/vote: no complete run folder; -m judge_vote needs answer_origin and vote: run `infer.py -m vote` "
     "first"),
    ("no shards", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK}, INFER + ["-l", "0", "-g", "0"],
     "error: -g 0: the number of shards must be at least 1"),
    ("base_data_path is a file", {"c.yaml": CFG.replace("{d}/exp", "{d}/exp/info.jsonl"), "exp/info.jsonl": INFO_OK},
     INFER, "error: {d}/c.yaml: key 'base_data_path' is the experiment folder that holds info.jsonl and the runs, but "
            "{d}/exp/info.jsonl is a file; set it to {d}/exp"),
    ("a file where the stage folder goes", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK, "exp/answer_origin": ""},
     INFER + ["-s", "r"], "error: {d}/exp/answer_origin/r: cannot make this run folder: {d}/exp/answer_origin is a "
                          "file, not a folder; move it away (or set base_data_path elsewhere) and rerun"),
    ("no config given", {"c.yaml": CFG, "exp/info.jsonl": INFO_OK}, ["infer.py", "-m", "infer"], None),
    ("grader on an empty file", {"p.jsonl": ""}, ["-m", "reasonlite.grader", "{d}/p.jsonl"],
     'error: {d}/p.jsonl: no pairs to grade (one {"gold": ..., "pred": ...} object per line)'),
    ("record without index", {"c.yaml": CFG, ORIGIN: origin(index=...)}, JUDGE,
     "error: {d}/exp/answer_origin/r1/0_1.jsonl:1: field 'index' is missing; not an answer_origin record"),
    ("record without answer", {"c.yaml": CFG, ORIGIN: origin(answer=...)}, JUDGE,
     "error: {d}/exp/answer_origin/r1/0_1.jsonl:1: field 'answer' is missing or not a string"),
    ("record without expected_answer", {"c.yaml": CFG, ORIGIN: origin(info={"prompt": "p"})}, JUDGE,
     "error: {d}/exp/answer_origin/r1/0_1.jsonl:1: field 'info.expected_answer' is missing"),
    ("vote record without vote", {"c.yaml": CFG, ORIGIN: origin(), "exp/vote/v1/0_1.jsonl": '{"index": "s:0"}\n'},
     ["infer.py", "-c", "{d}/c.yaml", "-m", "judge_vote"],
     "error: {d}/exp/vote/v1/0_1.jsonl:1: fields 'index' and 'vote' are required; not a vote record"),
    ("conversion of unjudged data", {"c.yaml": CFG, "exp/answer_judge/j1/0_1.jsonl": origin()},
     ["utils/saving_to_training_format.py", "-d", "{d}/exp/answer_judge/j1/0_1.jsonl"],
     "error: {d}/exp/answer_judge/j1/0_1.jsonl:1: no field 'judge'; this is not judged data (pass a file from "
     "answer_judge/ or answer_judge_vote/, written by infer.py -m judge or -m judge_vote)"),
]


@pytest.mark.parametrize("name, files, command, error", SURVEY, ids=[row[0] for row in SURVEY])
def test_bad_input_gets_one_clear_line(tmp_path, name, files, command, error):
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content.replace("{d}", str(tmp_path)) if isinstance(content, str) else content
        path.write_bytes(text.encode() if isinstance(text, str) else text)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = run_script(*[c.replace("{d}", str(tmp_path)) for c in command], timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if error is None:  # argparse's own: usage and one error line, exit 2
        assert proc.returncode == 2 and lines[-1].endswith("error: the following arguments are required: "
                                                           "-c/--config-path"), proc.stderr
    else:
        assert proc.returncode == 1 and lines == [error.replace("{d}", str(tmp_path))], proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_an_unknown_mode_is_argparses_usage_error(tmp_path):
    (tmp_path / "c.yaml").write_text(CFG.replace("{d}", str(tmp_path)))
    proc = run_script("infer.py", "-c", tmp_path / "c.yaml", "-m", "vot")
    assert proc.returncode == 2 and "invalid choice: 'vot'" in proc.stderr


def test_a_read_only_experiment_gets_one_line(tmp_path):
    """A folder this user cannot write (a read-only mount: root ignores file modes, not that)."""
    import subprocess
    exp = tmp_path / "exp"
    exp.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(exp)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (exp / "info.jsonl").write_text(INFO_OK)
        subprocess.run(["mount", "-o", "remount,ro", str(exp)], check=True)
        (tmp_path / "c.yaml").write_text(CFG.replace("{d}", str(tmp_path)))
        proc = run_script("infer.py", "-c", tmp_path / "c.yaml", "-m", "infer", "-s", "r")
    finally:
        subprocess.run(["umount", "-l", str(exp)], capture_output=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: {exp}/answer_origin/r: cannot make this run folder (Read-only file system); base_data_path must be "
        "a folder this user can write (or set base_data_path elsewhere)"]


def test_show_of_an_experiment_without_runs_and_submit_help(tmp_path):
    (tmp_path / "info.jsonl").write_text(INFO_OK)
    proc = run_script("-m", "reasonlite.show", tmp_path)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no complete run in this experiment yet (the first comes from `python3 infer.py -c "
        "<config> -m infer` with this folder as base_data_path)"]
    import subprocess
    from conftest import ROOT
    helped = subprocess.run(["bash", str(ROOT / "slurm" / "submit.sh"), "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "bash slurm/submit.sh generate CONFIG" in helped.stdout
