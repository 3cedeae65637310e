"""vote, judge and judge_vote on hand-written gpt-oss records; the LLM backends against the real server."""
import json

import pytest
from conftest import read_folder, run_main, write_yaml

from reasonlite import jsonl
from reasonlite.config import parse
from reasonlite.labels import JudgeVote
from reasonlite.llm import parse_judge_reply, parse_vote_reply

FINAL = "<|end|><|start|>assistant<|channel|>final<|message|>"


def harmony(box, analysis="Let me think about it step by step."):
    """A gpt-oss generation as infer.py stores it; box None means truncated inside the analysis channel."""
    if box is None:
        return f"<|channel|>analysis<|message|>{analysis}"
    return f"<|channel|>analysis<|message|>{analysis}{FINAL}The answer is $\\boxed{{{box}}}$."


def write_origin(base, problems, run="r1", shards=1):
    """problems: {problem index: (expected_answer, [box or None for a truncated output or ... for a failed one])}"""
    folder = base / "answer_origin" / run
    folder.mkdir(parents=True, exist_ok=True)
    files = [open(folder / f"{r}_{shards}.jsonl", "w") for r in range(shards)]
    n = 0
    for index, (expected, boxes) in problems.items():
        info = {"prompt": f"Problem {index}", "expected_answer": expected, "index": index}
        for j, box in enumerate(boxes):
            answer = None if box is ... else harmony(box)
            rec = {"info": info, "index": f"{index}_{j}", "model_input": "<prompt>",
                   "model_output": None if answer is None else "<prompt>" + answer, "prompt": info["prompt"],
                   "answer": answer}
            files[n % shards].write(json.dumps(rec) + "\n")  # problems spread over shards, as infer does
            n += 1
    for f in files:
        f.close()
    return folder


def config(tmp_path, **keys):
    cfg = {"model_path": "unused", "base_data_path": str(tmp_path / "exp"), "prompt_format": "harmony",
           "judge_backend": "rule", "grader_workers": 2, **keys}
    return write_yaml(tmp_path / "c.yaml", cfg)


def mode(cfg, name, *args):
    """infer.py's main in this process (the script itself runs as a subprocess in test_infer and the survey)."""
    from reasonlite import modes
    return run_main(modes.main, "-c", cfg, "-m", name, *args)


def by_index(folder):
    return {r["index"]: r for r in read_folder(folder)}


def test_vote_groups_equivalent_spellings_and_keeps_others_apart(tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {
        "p:0": ("\\frac{1}{2}", ["\\frac{1}{2}", "0.5", "\\dfrac{1}{2}", "\\frac{1}{2}", "1/2", "2", "2.0", None,
                                 "-\\frac{1}{2}"]),
        "p:1": ("33", ["033", "33", "33", "34", "3.3", ...]),
        "p:2": ("7", [None, None]),
    }, shards=2)
    proc = mode(config(tmp_path), "vote", "-s", "v")
    assert proc.returncode == 0, proc.stderr
    votes = by_index(base / "vote" / "v")
    assert list(votes["p:0"]["vote"].items()) == [("\\frac{1}{2}", 5), ("2", 2), ("-\\frac{1}{2}", 1)]
    assert list(votes["p:1"]["vote"].items()) == [("33", 3), ("34", 1), ("3.3", 1)]
    assert votes["p:2"]["vote"] == {}
    # the vote record is the info record plus its vote, as in the seed
    assert votes["p:1"] == {"prompt": "Problem p:1", "expected_answer": "33", "index": "p:1",
                            "vote": votes["p:1"]["vote"]}


def test_judge_against_expected_answer(tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {"a:0": ("33", ["033", "34", None, ..., "\\boxed{33}", "33 \\text{ apples}"]),
                        "a:1": ("(1, 2)", ["(1,2)", "(2, 1)", "\\left(1, 2\\right)"])})
    proc = mode(config(tmp_path), "judge", "-s", "j")
    assert proc.returncode == 0, proc.stderr
    judged = by_index(base / "answer_judge" / "j")
    assert {k: v["judge"] for k, v in judged.items()} == {
        "a:0_0": True, "a:0_1": False, "a:0_2": False, "a:0_3": None, "a:0_4": True, "a:0_5": True,
        "a:1_0": True, "a:1_1": False, "a:1_2": True}
    origin = by_index(base / "answer_origin" / "r1")
    for index, rec in judged.items():  # the answer_origin record plus judge, nothing else
        assert {k: v for k, v in rec.items() if k != "judge"} == origin[index]
    assert "9 labelled now: false 3, null 1, true 5" in proc.stderr
    # the record whose generation failed is unfinished: the next run tries it again and carries the rest
    proc = mode(config(tmp_path), "judge", "-s", "j2")
    assert "8 carried over, 1 new" in proc.stderr


@pytest.mark.parametrize("vote, label", [
    ({"5": 9, "6": 1}, ("5", "vote")),        # 0.9 of the votes, 9 votes
    ({"5": 8, "6": 2}, ("7", "dataset")),     # 0.8 < vote_ratio
    ({"5": 3}, ("7", "dataset")),             # all votes but fewer than min_vote
    ({"5": 4}, ("5", "vote")),                # exactly min_vote
    ({}, ("7", "dataset")),                   # nobody answered
])
def test_pseudo_label_rule_at_its_thresholds(vote, label):
    stage = JudgeVote(parse("model_path: m\nbase_data_path: d\n", "c.yaml"))
    stage.cfg.update({"vote_ratio": 0.9, "min_vote": 4})
    assert stage.pseudo_label(vote, "7") == label


def test_judge_vote_uses_the_pseudo_label_where_the_vote_is_clear(tmp_path):
    base = tmp_path / "exp"
    # p:0 - the dataset label is wrong and the model agrees with itself 5 times: the pseudo-label wins
    # p:1 - the vote is split: the dataset label stays
    write_origin(base, {"p:0": ("99", ["12"] * 5 + ["13"] * 0),
                        "p:1": ("4", ["4", "4", "5", "5", "6"])})
    cfg = config(tmp_path)
    assert mode(cfg, "vote", "-s", "v").returncode == 0
    proc = mode(cfg, "judge_vote", "-s", "jv")
    assert proc.returncode == 0, proc.stderr
    judged = by_index(base / "answer_judge_vote" / "jv")
    assert all(judged[f"p:0_{j}"]["judge"] is True for j in range(5))
    assert judged["p:0_0"]["info"]["label_source"] == "vote"
    assert judged["p:0_0"]["info"]["vote"] == {"12": 5}
    assert [judged[f"p:1_{j}"]["judge"] for j in range(5)] == [True, True, False, False, False]
    assert judged["p:1_0"]["info"]["label_source"] == "dataset"


def test_label_modes_need_their_input(tmp_path):
    cfg = config(tmp_path)
    (tmp_path / "exp").mkdir()
    proc = mode(cfg, "judge")
    assert proc.returncode == 1 and "no complete run folder; -m judge needs answer_origin: run `infer.py -m infer` " \
                                    "first" in proc.stderr
    write_origin(tmp_path / "exp", {"p:0": ("1", ["1"])})
    proc = mode(cfg, "judge_vote")
    assert proc.returncode == 1 and "-m judge_vote needs answer_origin and vote: run `infer.py -m vote` first" \
        in proc.stderr


def test_judge_rejects_records_that_are_not_answer_origin(tmp_path):
    folder = tmp_path / "exp" / "answer_origin" / "r1"
    folder.mkdir(parents=True)
    (folder / "0_1.jsonl").write_text(json.dumps({"index": "x_0", "info": {"prompt": "p"}, "answer": "a"}) + "\n")
    proc = mode(config(tmp_path), "judge")
    assert proc.returncode == 1
    assert f"{folder / '0_1.jsonl'}:1: field 'info.expected_answer' is missing" in proc.stderr
    assert not (tmp_path / "exp" / "answer_judge").exists()


def test_judge_resumes_a_killed_run_in_place(tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {f"q:{i}": (str(i), [str(i), str(i + 1), "x"]) for i in range(20)})
    cfg = config(tmp_path)
    assert mode(cfg, "judge", "-s", "full").returncode == 0
    complete = (base / "answer_judge" / "full" / "0_1.jsonl").read_text().splitlines()
    # as if killed after 25 records, halfway through the 26th line
    folder = base / "answer_judge" / "again"
    folder.mkdir()
    (folder / "0_1.jsonl.part").write_text("\n".join(complete[:25]) + "\n" + complete[25][:40])
    (base / "answer_judge" / "full" / "0_1.jsonl").unlink()  # nothing to carry over: only the .part helps
    proc = mode(cfg, "judge", "-s", "again")
    assert proc.returncode == 0, proc.stderr
    assert "25 kept from this folder" in proc.stderr and "35 new" in proc.stderr
    records = read_folder(folder)
    assert sorted(r["index"] for r in records) == sorted(json.loads(x)["index"] for x in complete)
    assert jsonl.latest_complete(base / "answer_judge") == folder


def test_vote_resumes_and_cleans_its_buckets(tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {f"q:{i}": (str(i), [str(i)] * 3) for i in range(10)})
    cfg = config(tmp_path)
    assert mode(cfg, "vote", "-s", "a").returncode == 0
    proc = mode(cfg, "vote", "-s", "b")
    assert proc.returncode == 0 and "10 carried over, 0 new" in proc.stderr
    assert not list((base / "vote").glob(".buckets-*"))


# ---- the seed's LLM prompts: parsing ------------------------------------------------------------------------
@pytest.mark.parametrize("reply, vote", [
    (FINAL + '\\boxed{"25": 3, "12": 2, "-2": 1}', {"25": 3, "12": 2, "-2": 1}),
    (FINAL + '\\boxed{{"12": 2, "25": 3}}', {"25": 3, "12": 2}),                     # extra braces, unsorted
    (FINAL + '\\boxed{"\\frac{1}{2}": 4, "2": 1}', {"\\frac{1}{2}": 4, "2": 1}),     # LaTeX inside JSON
    ("<think>counting</think>\\boxed{\"7\": 5}", {"7": 5}),
    (FINAL + "\\boxed{25: three}", None),
    (FINAL + '\\boxed{"25": -1}', None),
    (FINAL + "no box at all", None),
    ('<|channel|>analysis<|message|>\\boxed{"5": 3} but then I ran out of tokens', None),  # never reached final
])
def test_parse_vote_reply(reply, vote):
    assert parse_vote_reply(reply) == vote
    if vote:
        assert list(parse_vote_reply(reply).values()) == sorted(vote.values(), reverse=True)


@pytest.mark.parametrize("reply, verdict", [
    (FINAL + '\\boxed{"match": true}', True),
    (FINAL + '\\boxed{{"match": false}}', False),
    (FINAL + '\\boxed{"match": "True"}', True),
    ('<|channel|>analysis<|message|>they match: true' + FINAL + '\\boxed{"match": false}', False),
    (FINAL + "These are true equivalents.", None),  # the seed's substring test would say true
    (FINAL + '\\boxed{"match": maybe}', None),
    ("garbage \u0000 \\boxed{", None),
])
def test_parse_judge_reply(reply, verdict):
    assert parse_judge_reply(reply) is verdict


# ---- the LLM backends against the real tiny-model server -----------------------------------------------------
def test_llm_backends_survive_garbage_from_a_real_server(make_config, tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {"g:0": ("5", ["5", "6", "\\frac{10}{2}"]), "g:1": ("1", ["5^{5^{5^{5}}}"])})
    cfg = make_config(vote_backend="llm", judge_backend="llm", max_tokens=24, num_answer=3)
    proc = mode(cfg, "vote", "-s", "v")
    assert proc.returncode == 0, proc.stderr
    votes = by_index(base / "vote" / "v")
    assert all(v["vote"] == {} for v in votes.values())  # the tiny model writes no JSON: empty votes, counted
    assert "malformed LLM vote 2" in proc.stderr and "2 LLM calls" in proc.stderr
    proc = mode(cfg, "judge", "-s", "j")
    assert proc.returncode == 0, proc.stderr
    assert all(r["judge"] is None for r in read_folder(base / "answer_judge" / "j"))
    assert "4 LLM calls" in proc.stderr


def test_hybrid_asks_the_llm_only_where_the_grader_cannot_decide(make_config, tmp_path):
    base = tmp_path / "exp"
    write_origin(base, {"h:0": ("5", ["5", "6"]), "h:1": ("1", ["5^{5^{5^{5}}}"])})
    cfg = make_config(judge_backend="hybrid", grader_timeout=2, max_tokens=16)
    proc = mode(cfg, "judge", "-s", "j")
    assert proc.returncode == 0, proc.stderr
    judged = by_index(base / "answer_judge" / "j")
    assert judged["h:0_0"]["judge"] is True and judged["h:0_1"]["judge"] is False
    assert judged["h:1_0"]["judge"] is None  # the grader timed out and the tiny model's reply is garbage
    assert "1 LLM calls" in proc.stderr
