"""utils/saving_to_training_format.py: the seed's harmony conversion, each drop reason, chunks, filters, bad input."""
import json
from pathlib import Path

import pytest
from conftest import SHARED, run_script

from reasonlite.prompts import HARMONY_TEMPLATE, INFER_SUFFIX, infer_prompt

SCRIPT = "utils/saving_to_training_format.py"
ANALYSIS = "We need 3 + 4. Adding gives 7.\n\nCheck: 7 - 4 = 3."
FINAL = "Adding the numbers:\n\n$$3 + 4 = 7$$\n\n**Answer:** \\boxed{7}"


def harmony_input(problem="What is $3 + 4$?", level="medium"):
    return HARMONY_TEMPLATE.format(reasoning_level=level, prompt=infer_prompt(problem))


def harmony_answer(analysis=ANALYSIS, final=FINAL):
    # What gpt-oss returns through /v1/completions with skip_special_tokens=false after a prompt ending in
    # `<|start|>assistant`: the channel tag comes first.
    return (f"<|channel|>analysis<|message|>{analysis}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{final}")


def record(i=0, judge=True, answer=None, problem="What is $3 + 4$?", model_input=None):
    model_input = harmony_input(problem) if model_input is None else model_input
    answer = harmony_answer() if answer is None else answer
    return {"info": {"prompt": problem, "expected_answer": "7", "index": f"t:{i}"}, "index": f"t:{i}_0",
            "model_input": model_input, "model_output": model_input + answer, "prompt": problem,
            "answer": answer, "judge": judge}


def write_judged(base, records, stage="answer_judge", run="20250101_000000"):
    folder = Path(base) / stage / run
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0_1.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def convert(path, *args):
    return run_script(SCRIPT, "-d", path, *args, timeout=120)


def read_parts(folder):
    parts = sorted(Path(folder).glob("data_part*.jsonl"), key=lambda p: int(p.stem[len("data_part"):]))
    return parts, [json.loads(x) for p in parts for x in p.read_text().splitlines()]


def test_harmony_record_converts_exactly_as_the_seed(tmp_path):
    path = write_judged(tmp_path / "exp", [record()])
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    parts, rows = read_parts(tmp_path / "exp" / "format_data")
    assert [p.name for p in parts] == ["data_part1.jsonl"]
    assert rows == [{"messages": [
        {"role": "user", "content": "What is $3 + 4$?\nPlease reason step by step, and put your final answer "
                                    "within \\boxed{}."},
        {"role": "assistant", "content": "<think>\nWe need 3 + 4. Adding gives 7.\n\nCheck: 7 - 4 = 3.\n</think>"
                                         "Adding the numbers:\n\n$$3 + 4 = 7$$\n\n**Answer:** \\boxed{7}"},
    ]}]
    assert "[correct ratio]: 1.0" in proc.stdout


def test_seed_rule_on_model_output_and_trailing_return():
    from reasonlite.convert import convert as conv
    # A seed record: no 'answer' needed when model_output = model_input + generation.
    rec = record(answer=harmony_answer(final="x \\boxed{7}<|return|>"))
    del rec["answer"]
    reason, messages = conv(rec, "f:1")
    assert reason is None
    assert messages[1]["content"] == f"<think>\n{ANALYSIS}\n</think>x \\boxed{{7}}"


def test_think_style_records_convert_too(tmp_path):
    chatml = f"<|im_start|>user\nWhat is $3 + 4$?{INFER_SUFFIX}<|im_end|>\n<|im_start|>assistant\n"
    recs = [record(0, answer="<think>\nAdd them: 7.\n</think>\n\nThe answer is \\boxed{7}.", model_input=chatml),
            # a template that prefills `<think>\n`: the generation holds only the closing tag
            record(1, answer="Add them: 7.\n</think>\n\n\\boxed{7}", model_input="<｜User｜>What is $3 + 4$?"
                   + INFER_SUFFIX + "<｜Assistant｜><think>\n")]
    path = write_judged(tmp_path / "exp", recs)
    proc = convert(path, "--chunk-size", "1", "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_parts(tmp_path / "exp" / "format_data")
    got = sorted((r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows)
    user = "What is $3 + 4$?" + INFER_SUFFIX
    assert got == sorted([(user, "<think>\nAdd them: 7.\n</think>\n\n\\boxed{7}"),
                          (user, "<think>\nAdd them: 7.\n</think>\n\nThe answer is \\boxed{7}.")])


def test_each_drop_reason_is_counted(tmp_path):
    a = "<|channel|>analysis<|message|>"
    recs = [
        record(0),  # kept
        record(1, judge=False),
        record(2, judge=None),
        record(3, judge=None, answer=None),  # a failed generation stays unjudged
        record(4, answer=a + "still thinking when max_tokens ran out"),  # truncated
        record(5, answer=a + "x<|end|><|start|>assistant<|channel|>commentary<|message|>y"),  # not analysis+final
        record(6, answer=a + "x<|end|><|start|>assistant<|channel|>analysis<|message|>y<|end|>"
                                "<|start|>assistant<|channel|>final<|message|>z"),  # two analysis messages
        record(7, answer="The answer is \\boxed{7}."),  # no channels at all
        record(8, answer=a + "x<|end|><|start|>assistant<|channel|>final<|message|>z<|start|>user<|message|>q"),
    ]
    recs[3]["answer"] = recs[3]["model_output"] = None
    path = write_judged(tmp_path / "exp", recs)
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[total data]: 9" in out and "[kept data]: 1" in out
    assert "[format mismatch ratio]: 0.4444" in out  # 4 of 9
    assert "[truncated ratio]: 0.1111" in out
    assert "[error ratio]: 0.2222" in out
    assert "[wrong ratio]: 0.1111" in out
    assert "[correct ratio]: 0.1111" in out
    assert "-4  format mismatch" in out and "-1  truncated" in out


def test_chunks_are_shuffled_deterministic_and_replace_stale_parts(tmp_path):
    recs = [record(i, answer=harmony_answer(final=f"answer {i}")) for i in range(25)]
    path = write_judged(tmp_path / "exp", recs, stage="answer_judge_vote")
    out = tmp_path / "exp" / "format_data"
    out.mkdir(parents=True)
    (out / "data_part9.jsonl").write_text("{}\n")  # left by an earlier, bigger conversion
    proc = convert(path, "--chunk-size", "10")
    assert proc.returncode == 0, proc.stderr
    parts, rows = read_parts(out)
    assert [p.name for p in parts] == ["data_part1.jsonl", "data_part2.jsonl", "data_part3.jsonl"]
    assert [len(p.read_text().splitlines()) for p in parts] == [10, 10, 5]
    finals = [r["messages"][1]["content"].split("</think>")[1] for r in rows]
    assert sorted(finals) == sorted(f"answer {i}" for i in range(25))
    assert finals != [f"answer {i}" for i in range(25)]  # shuffled
    assert not list(out.glob(".*"))  # no temporary files left
    assert convert(path, "--chunk-size", "10").returncode == 0
    assert read_parts(out)[1] == rows  # same seed, same order


BENCH_PROBLEMS = [
    "Let $ABC$ be a triangle with $AB = 13$, $BC = 14$ and $CA = 15$. Find the radius of the circle tangent to all "
    "three sides of the triangle, and express the area of the triangle in terms of that radius.",
    "A sequence is defined by $a_1 = 3$ and $a_{n+1} = 2a_n - 1$ for every positive integer $n$. Find the "
    "remainder when $a_{2024}$ is divided by $1000$.",
    "How many positive divisors of $2^{10} 3^{6}$ are perfect squares but not perfect cubes?",
]


def write_benchmarks(folder):
    """Two small benchmark files of our own, in the benchmark format (id, problem, answer)."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "bench_a.jsonl", folder / "bench_b.jsonl"
    a.write_text("".join(json.dumps({"id": str(i), "problem": p, "answer": "1"}) + "\n"
                         for i, p in enumerate(BENCH_PROBLEMS[:2])))
    b.write_text(json.dumps({"id": "0", "problem": BENCH_PROBLEMS[2], "answer": "1"}) + "\n")
    return a, b


def test_filters_dedup_decontaminate_max_tokens(tmp_path, tiny_model):
    bench = BENCH_PROBLEMS[1]
    long_final = "word " * 400
    recs = [
        record(0),
        record(1),  # the same answer to the same problem again
        record(2, problem=bench),  # a benchmark problem
        record(3, problem="Moreover, " + bench[:90]),  # a part of one, with other words around it
        record(4, answer=harmony_answer(final=long_final)),
        record(5, problem="How many primes are less than 20?"),
    ]
    path = write_judged(tmp_path / "exp", recs)
    a, b = write_benchmarks(tmp_path / "benchmarks")
    proc = convert(path, "--dedup", "--decontaminate", a, "--decontaminate", b,
                   "--max-tokens", "300", "--tokenizer", tiny_model)
    assert proc.returncode == 0, proc.stderr
    _, rows = read_parts(tmp_path / "exp" / "format_data")
    assert sorted(r["messages"][0]["content"] for r in rows) == sorted(
        [infer_prompt("What is $3 + 4$?"), infer_prompt("How many primes are less than 20?")])
    assert "-2  contaminated (8-gram overlap with 3 problems of 2 benchmark source(s))" in proc.stdout
    assert "-1  duplicate answers" in proc.stdout
    assert "-1  longer than 300 tokens" in proc.stdout
    assert "         2  written" in proc.stdout


@pytest.mark.skipif(not (SHARED / "benchmarks" / "aime24.jsonl").exists(),
                    reason="needs ../shared/benchmarks (absent in a user's clone)")
def test_decontaminate_against_the_public_benchmarks(tmp_path):
    aime = json.loads((SHARED / "benchmarks" / "aime24.jsonl").read_text().splitlines()[0])["problem"]
    path = write_judged(tmp_path / "exp", [record(0), record(1, problem=aime)])
    proc = convert(path, "--decontaminate", SHARED / "benchmarks" / "aime24.jsonl",
                   "--decontaminate", SHARED / "benchmarks" / "math500.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "-1  contaminated (8-gram overlap with 530 problems of 2 benchmark source(s))" in proc.stdout


def test_decontaminate_with_an_unloadable_dataset_id_is_one_error_line(tmp_path):
    path = write_judged(tmp_path / "exp", [record()])
    proc = convert(path, "--decontaminate", "no-such-org/no-such-benchmark:test")
    assert proc.returncode == 1
    lines = _error_lines(proc)
    assert len(lines) == 1 and lines[0].startswith(
        "error: no-such-org/no-such-benchmark:test: not a file, a folder or a loadable dataset id")


def test_ngrams_short_texts_and_case():
    from reasonlite.decontaminate import ngrams
    assert ngrams("Find X.", 8) == {("find", "x")}
    assert len(ngrams(" ".join(map(str, range(10))), 8)) == 3


def _error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


def test_not_judged_data_is_one_error_line(tmp_path):
    rec = record()
    del rec["judge"]
    path = write_judged(tmp_path / "exp", [rec], stage="answer_origin")
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc) == [f"error: {path}:1: no field 'judge'; this is not judged data (pass a file from "
                                  "answer_judge/ or answer_judge_vote/, written by infer.py -m judge or -m judge_vote)"]


def test_missing_fields_are_one_error_line_and_a_damaged_line_is_skipped(tmp_path):
    rec = record(1)
    del rec["model_input"]
    path = write_judged(tmp_path / "exp", [record(0), rec])
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc) == [f"error: {path}:2: field 'model_input' is missing or not a string"]
    assert not (tmp_path / "exp" / "format_data" / "data_part1.jsonl").exists()

    # A line that is not JSON at all is damage (a copy cut short), not a wrong file: named, skipped, counted.
    path.write_text(json.dumps(record(0)) + "\n{not json\n")
    proc = convert(path)
    assert proc.returncode == 0, proc.stderr
    assert f"{path}:2: damaged line skipped (not valid JSON" in proc.stderr
    assert "[damaged lines]: 1 skipped" in proc.stdout


def test_run_and_stage_folders_and_incomplete_runs(tmp_path):
    path = write_judged(tmp_path / "exp", [record(0)])
    assert convert(path.parent.parent).returncode == 0  # stage folder: its newest complete run
    (path.parent / "1_2.jsonl.part").write_text("")
    proc = convert(path.parent)
    assert proc.returncode == 1 and "incomplete run folder" in proc.stderr
    proc = convert(tmp_path / "nowhere.jsonl")
    assert proc.returncode == 1 and "no such file or folder" in proc.stderr


def test_nothing_kept_is_an_error_and_writes_nothing(tmp_path):
    path = write_judged(tmp_path / "exp", [record(0, judge=False), record(1, judge=None)])
    proc = convert(path)
    assert proc.returncode == 1
    assert _error_lines(proc)[-1] == f"error: no record survived the filters; nothing written to {path.parents[2]}" \
                                     "/format_data"
    assert not list((tmp_path / "exp" / "format_data").iterdir())
