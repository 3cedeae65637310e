"""JSONL reading, shard files, run folders and resume bookkeeping, without a server."""
import json

import pytest

from reasonlite import jsonl
from reasonlite.jsonl import DataError, IndexSet


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def rec(index, answer="a"):
    return (json.dumps({"index": index, "answer": answer}) + "\n").encode()


def test_bad_lines_name_file_and_line(tmp_path):
    p = write(tmp_path / "x.jsonl", [rec("a"), b"{oops\n"])
    with pytest.raises(DataError, match=r"x.jsonl:2: not valid JSON"):
        list(jsonl.read_records(p))
    p = write(tmp_path / "y.jsonl", [rec("a"), b"\n", b"[1, 2]\n"])
    with pytest.raises(DataError, match=r"y.jsonl:3: expected a JSON object, got list"):
        list(jsonl.read_records(p))
    p = write(tmp_path / "z.jsonl", [b'{"a": "\xff"}\n'])
    with pytest.raises(DataError, match=r"z.jsonl:1: not valid UTF-8"):
        list(jsonl.read_records(p))


def test_torn_last_line_is_dropped_only_where_allowed(tmp_path):
    p = write(tmp_path / "0_1.jsonl.part", [rec("a"), rec("b"), b'{"index": "c", "ans'])
    assert [r["index"] for _, r in jsonl.read_records(p, torn_tail_ok=True)] == ["a", "b"]
    with pytest.raises(DataError, match=":3: not valid JSON"):
        list(jsonl.read_records(p))


def test_reopen_part_truncates_torn_line_and_unfinished_tail(tmp_path):
    p = write(tmp_path / "0_1.jsonl.part", [rec("a"), rec("b"), rec("c", None), rec("d", None), b'{"ind'])
    expected = IndexSet()
    for i in "abcd":
        expected.add(i)
    done, n = jsonl.reopen_part(p, lambda r: r["answer"] is not None, expected)
    assert p.read_bytes() == rec("a") + rec("b")
    assert n == 2 and "a" in done and "b" in done and "c" not in done


def test_folder_completeness_and_latest(tmp_path):
    stage = tmp_path / "answer_origin"
    write(stage / "20250101_000000" / "0_1.jsonl", [rec("a")])
    write(stage / "20250102_000000" / "0_2.jsonl", [rec("a")])  # one shard of two is missing
    write(stage / "20250103_000000" / "0_1.jsonl.part", [rec("b")])  # interrupted
    assert jsonl.latest_complete(stage) == stage / "20250101_000000"
    write(stage / "20250102_000000" / "1_2.jsonl", [rec("b")])
    assert jsonl.latest_complete(stage) == stage / "20250102_000000"
    # resume reads the newest complete folder and every interrupted run after it, newest first
    assert jsonl.resume_sources(stage) == [stage / "20250103_000000", stage / "20250102_000000"]
    assert jsonl.resume_sources(stage, exclude=stage / "20250103_000000") == [stage / "20250102_000000"]
    assert [r["index"] for r in jsonl.iter_folder(stage / "20250102_000000")] == ["a", "b"]


def test_shard_of_partitions_stably():
    indices = [f"p:{i}_{j}" for i in range(50) for j in range(8)]
    shards = [[x for x in indices if jsonl.shard_of(x, 3) == r] for r in range(3)]
    assert sorted(sum(shards, [])) == sorted(indices)
    assert all(len(s) > 80 for s in shards)  # roughly even
    assert jsonl.shard_of("p:7_3", 5) == jsonl.shard_of("p:7_3", 5)


def test_index_set_is_a_set():
    s = IndexSet()
    s._MERGE_AT = 100  # exercise the merge into the sorted array
    for i in range(1000):
        s.add(f"x:{i}")
    s.add("x:5")
    assert len(s) == 1000
    assert all(f"x:{i}" in s for i in range(1000))
    assert not any(f"y:{i}" in s for i in range(1000))


def test_writer_appends_whole_lines_and_renames(tmp_path):
    part = tmp_path / "0_1.jsonl.part"
    w = jsonl.ShardWriter(part, flush_every=2)
    for i in range(5):
        w.write({"index": str(i), "answer": "é"})
    assert part.read_bytes().count(b"\n") == 4  # flushed in pairs
    w.finish(tmp_path / "0_1.jsonl")
    assert not part.exists()
    assert [r["index"] for _, r in jsonl.read_records(tmp_path / "0_1.jsonl")] == list("01234")
