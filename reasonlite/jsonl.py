"""The pipeline's one JSONL reader and writer, and the rules of its run folders.

Layout: `<base>/<stage>/<run>/<rank>_<world>.jsonl`, where stage is answer_origin, vote, answer_judge or
answer_judge_vote and run is a timestamp (or a name given with -s).

Crash safety rests on three rules:
- A shard is written to `<rank>_<world>.jsonl.part` and renamed to `<rank>_<world>.jsonl` only when every record of
  its share has been written; a run folder is complete when it holds all `world` shard files and no `.part` file.
  The next stage reads only complete folders, so a half-written run never becomes "the latest".
- Records are appended whole, each ending in a newline, so a SIGKILL can only tear the last line of a `.part` file.
  A reader of `.part` files drops that torn line; a run resuming into its own `.part` truncates it first.
- Unfinished records (answer null after the last retry) are appended only in the final step before the rename, so
  in a `.part` file they form a tail block that a resuming run cuts off and redoes.
- One process writes a shard at a time: ShardLock holds `.<rank>_<world>.jsonl.lock` (an flock, which the kernel
  drops when its holder dies, and on NFS maps to a POSIX lock), with the holder's host and pid inside for messages.
- A write the disk refuses (ENOSPC, EDQUOT) is undone to the byte: the file is as it was before it.
- A damaged line in the middle of the pipeline's own files (a copy cut short, a hand edit, a filesystem hiccup) is
  reported with its file and line, skipped and counted, and its record is redone; only a last line without its
  newline is dropped silently. Input files a user writes (info.jsonl) stay strict: a bad line there is an error.
"""
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

SHARD_RE = re.compile(r"^(\d+)_(\d+)\.jsonl(\.part)?$")


logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Input data the pipeline cannot use; the message names the file and line."""


class Damage:
    """Damaged lines met in the pipeline's own files: each named once (file and line), skipped and counted."""

    def __init__(self, say=20):
        self.count = 0
        self.places = []  # (path, line, why), the first few hundred
        self.say = say
        self._seen = set()  # a stage may read its input more than once; each line counts once

    def __call__(self, path, lineno, why):
        if (str(path), lineno) in self._seen:
            return
        self._seen.add((str(path), lineno))
        self.count += 1
        if len(self.places) < 500:
            self.places.append((str(path), lineno, why))
        if self.count <= self.say:
            logger.warning(f"{path}:{lineno}: damaged line skipped ({why}); {redone_by(path)} redoes its record")
        elif self.count == self.say + 1:
            logger.warning("more damaged lines skipped; the count is in the summary")

    def summary(self):
        return (f"{self.count} damaged lines skipped (the first named above); a rerun of the mode that wrote each "
                "redoes its record" if self.count else "")


def make_run_folder(folder):
    """mkdir -p for a run folder, or one line saying what is in the way (a file where a folder should be, a folder
    that may not be written) instead of an errno."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError:
        blocking = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise DataError(f"{folder}: cannot make this run folder: {blocking} is a file, not a folder; move it away "
                        "(or set base_data_path elsewhere) and rerun") from None
    except FileExistsError:
        raise DataError(f"{folder}: cannot make this run folder: a file has its name; move it away and rerun") \
            from None
    except OSError as e:
        raise DataError(f"{folder}: cannot make this run folder ({e.strerror}); base_data_path must be a folder "
                        "this user can write (or set base_data_path elsewhere)") from None


# The mode that writes each stage folder (answer_origin_high, a new_data_name, counts as answer_origin).
WRITERS = {"answer_origin": "infer", "vote": "vote", "answer_judge": "judge", "answer_judge_vote": "judge_vote"}


def redone_by(path):
    """Who redoes the record of a damaged line in `path`: the mode that writes the stage folder it sits in. A judge
    that skips a damaged answer cannot redo it; only infer can."""
    stage = Path(path).parent.parent.name
    for name in sorted(WRITERS, key=len, reverse=True):
        if stage == name or stage.startswith(name + "_"):
            return f"a rerun of `infer.py -m {WRITERS[name]}`"
    return "a rerun of the step that wrote it"


class DiskFullError(OSError):
    """A write the disk refused; the file was left as it was before the write."""

    def __str__(self):  # the one line for the user, without OSError's "[Errno 28]" prefix
        return self.strerror


def disk_full(path, e):
    """A one-line DiskFullError naming the path and the free space there."""
    try:
        free = shutil.disk_usage(Path(path).parent).free
        room = f"{free / 2**20:.1f} MiB free"
    except OSError:
        room = "free space unknown"
    return DiskFullError(e.errno, f"{path}: cannot write ({os.strerror(e.errno)}; {room} there); the file is as it "
                                  "was before this write: free space and rerun the same command")


def shard_of(index, world):
    """The shard (0..world-1) that owns a record, from its index alone, so every run and rank agrees on it."""
    return zlib.crc32(str(index).encode("utf-8")) % world


def read_records(path, torn_tail_ok=False, damage=None):
    """Yield (line_number, record) for each JSON object line of a file, streaming.

    With torn_tail_ok, a last line without its newline (a write cut by a crash) is skipped instead of parsed. Any
    other bad line raises DataError naming the file and line, or, with a Damage collector, is reported, counted and
    skipped (the pipeline's own files: their records are redone).
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if torn_tail_ok and not raw.endswith(b"\n"):
                return
            if not raw.strip():
                continue
            try:
                record = _parse_line(raw, path, lineno)
            except DataError as e:
                if damage is None:
                    raise
                damage(path, lineno, str(e).split(": ", 2)[-1])
                continue
            yield lineno, record


def _parse_line(raw, path, lineno):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start})") from None
    try:  # without its newline, so that a column in the message is a column of the line
        record = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    return record


def whole_lines_size(path):
    """The byte length of a file up to its last newline: what stays when a torn last line is cut off."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        pos = size
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                return pos - step + nl + 1
            pos -= step
    return 0


def dumps(record):
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


class ShardWriter:
    """Appends records to a shard's `.part` file in whole lines, flushing every `flush_every` records or second."""

    def __init__(self, part_path, flush_every=64, flush_seconds=1.0):
        self.part_path = Path(part_path)
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._fd = os.open(self.part_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._buf = []
        self._last = time.monotonic()
        self.written = 0

    def write(self, record):
        self._buf.append(dumps(record))
        self.written += 1
        if len(self._buf) >= self.flush_every or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self):
        if self._buf:
            data = b"".join(self._buf)
            self._buf = []
            start = os.lseek(self._fd, 0, os.SEEK_END)
            view = memoryview(data)
            try:
                while view:  # os.write may write less than asked; a short write must not tear a line
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as e:
                # Undo what part of this write got through, so no record is left half-written.
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    pass
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise disk_full(self.part_path, e) from None
                raise
        self._last = time.monotonic()

    def finish(self, final_path):
        """Flush, fsync and rename the `.part` file to its final name: the shard is now complete."""
        self.flush()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.replace(self.part_path, final_path)
        _fsync_dir(Path(final_path).parent)

    def close(self):
        """Flush what is buffered and close; a flush the disk refuses still closes the file."""
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None


class ShardLock:
    """One writer per shard: an exclusive flock on `.<shard>.lock` beside it, naming its holder's host and pid.

    The kernel releases an flock when its holder dies (on NFS the server does, when the client's lease ends), so a
    lock held is a writer alive. What the file says is for messages: a lock file that names a dead process is the
    trace of a crash, taken over with a line saying so.
    """

    def __init__(self, shard_path):
        shard_path = Path(shard_path)
        self.path = shard_path.with_name(f".{shard_path.name}.lock")
        self._fd = None

    def holder_if_held(self):
        """Who holds this lock now (their host, pid and start), or None; takes nothing and creates nothing. For a
        check before anything slow: the lock itself is taken by acquire()."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return _read_holder(fd) or "another process"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def busy_error(self, holder):
        return DataError(f"{self.path.parent}: another process ({holder}) is writing this shard; wait for it or stop "
                         "it, then rerun (two writers would duplicate records)")

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_holder(fd)
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise self.busy_error(holder) from None
            raise
        previous = _read_holder(fd)
        if previous:
            logger.warning(f"{self.path}: taking over the lock of {previous}, which is no longer running")
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty lock file: nobody holds it, no crash to report
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_holder(fd):
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"pid {info['pid']} on {info['host']}, since {info['started']}" if info else ""
    except (ValueError, KeyError, TypeError, OSError):
        return "an unknown process"


@contextmanager
def atomic_file(path, mode="wb"):
    """A file that appears at `path` whole or not at all: written to a hidden temporary name, fsynced, renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    f = open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(tmp, path)
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path, text):
    """Write text (a string or an iterable of strings) so that a reader sees the old or the new file whole."""
    with atomic_file(path, "w") as f:
        f.writelines([text] if isinstance(text, str) else text)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shard_files(folder):
    """{(rank, world, is_part): path} for the shard files of a run folder."""
    out = {}
    folder = Path(folder)
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        m = SHARD_RE.match(p.name)
        if m:
            out[(int(m.group(1)), int(m.group(2)), bool(m.group(3)))] = p
    return out


def is_complete(folder):
    files = shard_files(folder)
    if not files or any(part for _, _, part in files):
        return False
    worlds = {w for _, w, _ in files}
    if len(worlds) != 1:
        return False
    world = worlds.pop()
    return {r for r, _, _ in files} == set(range(world))


def run_folders(stage_dir):
    """Run folders of a stage, oldest first. Names sort as the seed's timestamps do (%Y%m%d_%H%M%S)."""
    stage_dir = Path(stage_dir)
    if not stage_dir.is_dir():
        return []
    return sorted((p for p in stage_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def latest_complete(stage_dir):
    """The newest complete run folder of a stage, or None: what the next stage reads."""
    for folder in reversed(run_folders(stage_dir)):
        if is_complete(folder):
            return folder
    return None


def resume_sources(stage_dir, exclude=None):
    """Folders whose finished records a new run carries over, newest first.

    The newest complete folder holds everything finished up to it; folders newer than it are interrupted runs
    that carried part of it over and added their own, so all of them together hold every finished record.
    """
    out = []
    for folder in reversed(run_folders(stage_dir)):
        if exclude is not None and folder.resolve() == Path(exclude).resolve():
            continue
        out.append(folder)
        if is_complete(folder):
            break
    return out


def folder_files(folder, include_part=True):
    """The shard files of a folder in rank order; `.part` files too unless told otherwise."""
    files = shard_files(folder)
    return [p for (r, w, part), p in sorted(files.items()) if include_part or not part]


def iter_folder(folder, include_part=True, damage=None):
    """Yield records of every shard file of a folder, dropping torn last lines of `.part` files."""
    for path in folder_files(folder, include_part):
        for _, record in read_records(path, torn_tail_ok=path.name.endswith(".part"), damage=damage):
            yield record


def reopen_part(part_path, is_finished, expected, damage=None):
    """Make an existing `.part` file (or a completed shard being redone) safe to append to.

    Keeps the leading run of finished records, truncates the rest (a torn line, or the unfinished tail block) and
    returns the indices kept and how many of them are in `expected`. A damaged line inside that run stays where it
    is and is skipped (readers skip it too); its record is redone. Streams, so the file may be larger than memory.
    """
    part_path = Path(part_path)
    done = IndexSet()
    n_expected = 0
    keep = 0
    with open(part_path, "rb") as f:
        offset = 0
        for lineno, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                break
            offset += len(raw)
            if not raw.strip():
                keep = offset
                continue
            try:
                record = _parse_line(raw, part_path, lineno)
            except DataError as e:
                if damage is None:
                    raise DataError(f"{e}; this file was not written by this pipeline or was damaged; move it "
                                    "away to redo its records") from None
                damage(part_path, lineno, str(e).split(": ", 2)[-1])
                keep = offset
                continue
            if not is_finished(record) or not isinstance(record.get("index"), str):
                break
            done.add(record["index"])
            n_expected += record["index"] in expected
            keep = offset
    if keep != part_path.stat().st_size:
        os.truncate(part_path, keep)
    return done, n_expected


def pid_alive(pid):
    """True while a process of that pid runs (a zombie, exited but not reaped, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited but is still in the table until reaped.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def remove_stale_temps(folder, glob):
    """Delete the temporary files (`glob`, holding `-<pid>.` or `.<pid>.` before the suffix) that a killed process
    left in `folder`; those of a live process stay. Returns how many went."""
    removed = 0
    for path in Path(folder).glob(glob):
        m = re.search(r"[.-](\d+)\.(?:jsonl\.)?tmp$", path.name)
        if m and not pid_alive(int(m.group(1))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class IndexSet:
    """A set of record indices in 8 bytes each: 64-bit hashes in a sorted array plus a small pending set.

    Millions of finished indices fit in tens of MB, where a set of strings would take GBs. A 64-bit collision
    among 10M indices has a probability near 3e-6.
    """

    _MERGE_AT = 1 << 16

    def __init__(self):
        self._sorted = np.empty(0, dtype=np.uint64)
        self._pending = set()

    @staticmethod
    def _hash(index):
        import hashlib
        return int.from_bytes(hashlib.blake2b(str(index).encode("utf-8"), digest_size=8).digest(), "little")

    def add(self, index):
        self._pending.add(self._hash(index))
        if len(self._pending) >= self._MERGE_AT:
            self._merge()

    def _merge(self):
        if self._pending:
            new = np.fromiter(self._pending, dtype=np.uint64, count=len(self._pending))
            new.sort()
            # Only what is not there yet, inserted in order: one new array of the final size, no more (union1d's
            # hashing and copies took ten times the set's own size at a million entries).
            pos = np.searchsorted(self._sorted, new)
            fresh = (pos >= len(self._sorted)) | (self._sorted[np.minimum(pos, len(self._sorted) - 1)] != new) \
                if len(self._sorted) else np.ones(len(new), dtype=bool)
            self._sorted = np.insert(self._sorted, pos[fresh], new[fresh])
            self._pending = set()

    def __contains__(self, index):
        h = self._hash(index)
        if h in self._pending:
            return True
        i = np.searchsorted(self._sorted, np.uint64(h))
        return bool(i < len(self._sorted) and self._sorted[i] == h)

    def __len__(self):
        self._merge()
        return len(self._sorted)
