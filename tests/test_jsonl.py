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


def test_a_write_the_disk_refuses_is_undone_to_the_byte(tmp_path, monkeypatch):
    """A write hook plays the full disk: the first os.write gets half through, the next raises ENOSPC."""
    import errno
    import os as os_module

    part = tmp_path / "0_1.jsonl.part"
    w = jsonl.ShardWriter(part, flush_every=100)
    w.write({"index": "a"})
    w.flush()
    before = part.read_bytes()
    real_write, calls = os_module.write, []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jsonl.os, "write", full_disk)
    w.write({"index": "b", "text": "x" * 100})
    w.write({"index": "c"})
    with pytest.raises(jsonl.DiskFullError) as e:
        w.flush()
    monkeypatch.undo()
    assert part.read_bytes() == before  # no half record left behind
    assert str(e.value).startswith(f"{part}: cannot write (No space left on device; ") and "MiB free" in str(e.value)
    w.close()


def test_shard_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    shard = tmp_path / "0_2.jsonl"
    with jsonl.ShardLock(shard):
        with pytest.raises(DataError, match=r"another process \(pid \d+ on .*\) is writing this shard"):
            jsonl.ShardLock(shard).acquire()
    with jsonl.ShardLock(shard):  # released: the next one gets it, with no takeover message
        pass
    assert (tmp_path / ".0_2.jsonl.lock").read_text() == ""


def test_damaged_lines_are_named_once_skipped_and_counted(tmp_path):
    path = tmp_path / "0_1.jsonl"
    path.write_bytes(b'{"index": "a"}\n{"index": "b", "ans\n\xff\xfe\n{"index": "c"}\n{"index": "d"')
    damage = jsonl.Damage()
    for _ in range(2):  # a stage may read its input twice: each line still counts once
        got = [r["index"] for _, r in jsonl.read_records(path, torn_tail_ok=True, damage=damage)]
        assert got == ["a", "c"]
    assert damage.count == 2 and [p[1] for p in damage.places] == [2, 3]
    with pytest.raises(DataError, match=":2: not valid JSON"):  # without a collector, still an error
        list(jsonl.read_records(path, torn_tail_ok=True))


def test_reopen_part_keeps_a_damaged_line_in_place_and_redoes_its_record(tmp_path):
    part = tmp_path / "0_1.jsonl.part"
    part.write_bytes(b'{"index": "a", "answer": "x"}\n{"index": "b", "ans\n{"index": "c", "answer": "y"}\n')
    damage = jsonl.Damage()
    done, n = jsonl.reopen_part(part, lambda r: r.get("answer") is not None, {"a", "b", "c"}, damage)
    assert "a" in done and "c" in done and "b" not in done and n == 2 and damage.count == 1
    assert part.read_bytes().count(b"\n") == 3  # nothing cut: the good record after the damaged one is kept
