"""The one runner every mode shares: check input, carry over, process what is missing, write, rename.

A mode is a Stage: it names its folder, lists the items it must produce a record for, makes one record per item,
and says when a record counts as finished. The runner does everything else the same way for every mode: it reads
all input before writing anything, carries over the finished records of earlier runs, sends the missing items
through a bounded queue to async workers, appends records as they arrive, writes unfinished records for what failed
for good, and renames the shard into place. See reasonlite/jsonl.py for the folder rules that make this crash-safe.
"""
import asyncio
import logging
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from reasonlite import jsonl
from reasonlite.jsonl import DataError, IndexSet, shard_of
from reasonlite.manifest import write_manifest
from reasonlite.signals import GracefulStop, Stopped, unless_stopped


logger = logging.getLogger(__name__)


class Stage:
    """One mode. Items are dicts with an 'index'; records are what the stage's files hold."""

    name = ""  # the stage's folder under base_data_path
    concurrency = 64  # items in flight at once

    def __init__(self, cfg):
        self.cfg = cfg
        self.base = Path(cfg.base_data_path)
        self.t0 = time.monotonic()
        self.damage = jsonl.Damage()  # damaged lines met in the pipeline's own files

    def check_inputs(self):
        """Read every input once and raise DataError on the first bad line, before any output exists."""

    def items(self):
        """Yield the items this stage must produce records for, in a stable order. Called more than once."""
        raise NotImplementedError

    def is_finished(self, record):
        raise NotImplementedError

    def unfinished(self, item):
        """The record written for an item whose processing failed for good; the next run redoes it."""
        raise NotImplementedError

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass

    async def process(self, item):
        """The finished record for an item, or None if it failed."""
        raise NotImplementedError

    def progress(self):
        """A short status for the progress bar."""
        return ""

    def summary(self):
        """Lines printed when the run ends."""
        return []

    def close(self):
        """Remove what the stage made for itself (vote's buckets); called however the run ended."""


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def run_folder_name(save_name):
    if save_name is None:
        return datetime.now().strftime("%Y%m%d_%H%M%S")
    if not NAME_RE.match(save_name):
        raise DataError(f"-s {save_name!r}: a run folder name is letters, digits and _ . : - (no path)")
    return save_name


def forget_run(folder, lock, *files):
    """Remove what a run made before it failed with nothing of its own: its files, its lock, and the run folder
    (and the stage folder) where they are now empty. Its carried-over records are still where they came from."""
    for path in files:
        Path(path).unlink(missing_ok=True)
    lock.release()
    lock.path.unlink(missing_ok=True)
    for d in (folder, folder.parent):
        try:
            d.rmdir()
        except OSError:
            break


async def _run(stage, folder, rank, world, cfg, stop):
    part = folder / f"{rank}_{world}.jsonl.part"
    final = folder / f"{rank}_{world}.jsonl"
    mine = lambda index: shard_of(index, world) == rank  # noqa: E731

    expected = IndexSet()
    for item in stage.items():
        if mine(item["index"]):
            expected.add(item["index"])
    total = len(expected)

    created = not folder.exists()
    jsonl.make_run_folder(folder)
    lock = jsonl.ShardLock(final).acquire()  # before touching the shard: a second writer would duplicate records
    counts = {"resumed": 0, "carried": 0, "new": 0, "failed": 0}
    writer = None
    try:
        if final.exists() and not part.exists():
            os.replace(final, part)  # redoing a completed shard in place: keep its finished records, redo the rest
        done, counts["resumed"] = (jsonl.reopen_part(part, stage.is_finished, expected, stage.damage)
                                   if part.exists() else (IndexSet(), 0))
        writer = jsonl.ShardWriter(part, flush_every=cfg.flush_every)
        for src in jsonl.resume_sources(folder.parent, exclude=folder):
            for n, rec in enumerate(jsonl.iter_folder(src, damage=stage.damage)):
                index = rec.get("index")
                if (isinstance(index, str) and stage.is_finished(rec) and mine(index) and index in expected
                        and index not in done):
                    writer.write(rec)
                    done.add(index)
                    counts["carried"] += 1
                if n % 10000 == 0:
                    await asyncio.sleep(0)  # lets a SIGTERM handler run during a long carry-over
                    if stop.requested:
                        break
        writer.flush()

        todo = total - counts["resumed"] - counts["carried"]
        started = True
        if todo and not stop.requested:  # nothing left needs no server: a finished run can be re-read without one
            started = await _process_missing(stage, todo, mine, done, writer, counts, f"{stage.name} {rank}_{world}",
                                             stop, cfg.get("drain_timeout", 25.0))
        if stop.requested:
            writer.close()
            left = total - counts["resumed"] - counts["carried"] - counts["new"]
            if not started:
                raise Stopped(f"{stop.signal_name}: stopped while waiting for the servers, before any request; "
                              f"{left} of this shard's {total} records left; rerun the same command to do them")
            raise Stopped(f"{stop.signal_name}: {counts['new']} new records saved in {part}, {left} of this shard's "
                          f"{total} left; rerun the same command to do them")

        if total > counts["resumed"] + counts["carried"] + counts["new"]:
            for item in stage.items():
                if mine(item["index"]) and item["index"] not in done:
                    writer.write(stage.unfinished(item))
        writer.finish(final)
    except BaseException:
        if writer is not None:
            writer.close()
        # A run that failed before producing a record (no server, say) leaves nothing behind: what it carried
        # over is still in the folders it came from.
        if created and counts["new"] == 0 and part.exists():
            forget_run(folder, lock, part)
        raise
    finally:
        lock.release()
    return final, counts, total


async def _process_missing(stage, todo, mine, done, writer, counts, desc, stop, drain_timeout):
    """Send every item of this shard not yet done through async workers; append each finished record.

    On a first SIGTERM/SIGINT no new item is started and the ones in flight get `drain_timeout` seconds to finish
    (their answers cost GPU time); then, or at a second signal, the rest is cancelled. A signal while the stage
    waits for its servers ends the wait at once; then it returns False (nothing was started).
    """
    if not await unless_stopped(stage.__aenter__(), stop):
        return False
    try:
        bar = tqdm(total=todo, desc=desc, unit="rec", dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
        # A bounded queue keeps memory flat however many items there are.
        n_workers = max(1, stage.concurrency)
        queue = asyncio.Queue(maxsize=2 * n_workers)

        async def produce():
            for item in stage.items():
                if stop.requested:
                    break
                if mine(item["index"]) and item["index"] not in done:
                    await queue.put(item)
            for _ in range(n_workers):
                await queue.put(None)

        async def work():
            while (item := await queue.get()) is not None:
                if stop.requested:
                    continue  # taken off the queue, not started: a rerun does it
                record = await stage.process(item)
                if record is None:
                    counts["failed"] += 1
                else:
                    writer.write(record)
                    done.add(item["index"])
                    counts["new"] += 1
                bar.update(1)
                if bar.n % 16 == 0 or bar.n == todo:
                    status = stage.progress()
                    bar.set_postfix_str(f"failed {counts['failed']}" + (f", {status}" if status else ""),
                                        refresh=False)

        tasks = [asyncio.ensure_future(produce())] + [asyncio.ensure_future(work()) for _ in range(n_workers)]

        def cancel_all():
            for t in tasks:
                t.cancel()

        def on_stop(urgent):
            if urgent:
                cancel_all()
            else:
                logger.warning(f"{stop.signal_name}: no new requests; waiting up to {drain_timeout:.0f} s for the "
                               f"ones in flight (signal again to stop at once)")
                asyncio.get_running_loop().call_later(drain_timeout, cancel_all)

        stop.on_request.append(on_stop)
        try:
            pending = set(tasks)
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                failed = [t for t in finished if not t.cancelled() and t.exception() is not None]
                if failed:
                    raise failed[0].exception()
        finally:
            stop.on_request.remove(on_stop)
            cancel_all()
            bar.close()
    finally:
        await stage.__aexit__(None, None, None)
    return True


def shard_folder(stage, rank, world, save_name):
    """The run folder a shard writes into, after checking the shard arguments against what the folder holds."""
    if world < 1:
        raise DataError(f"-g {world}: the number of shards must be at least 1")
    if not 0 <= rank < world:
        raise DataError(f"-l {rank} -g {world}: the rank must be in 0..{world - 1}")
    # The seed's new_data_name puts a mode's output beside the usual folder (answer_origin_high/, say).
    folder = stage.base / (stage.cfg.get("new_data_name") or stage.name) / run_folder_name(save_name)
    others = {w for (_, w, _) in jsonl.shard_files(folder) if w != world}
    if others:
        raise DataError(f"{folder}: holds shards of -g {sorted(others)[0]}, not -g {world}; use another -s")
    return folder


def run(stage, rank=0, world=1, save_name=None):
    """Run one stage for one shard; returns the path of the shard file it completed."""
    folder = shard_folder(stage, rank, world, save_name)
    stage.check_inputs()
    t0 = time.monotonic()

    async def main():
        with GracefulStop(raise_on_second=False) as stop:
            stop.install_in(asyncio.get_running_loop())
            return await _run(stage, folder, rank, world, stage.cfg, stop)

    final, counts, total = asyncio.run(main())
    # What produced this folder (config, versions, commit, model): "why do these two runs differ?" starts here.
    write_manifest(folder, stage.cfg, shard=(rank, world), extra={"stage": stage.name, "records": counts})
    unfinished = total - counts["resumed"] - counts["carried"] - counts["new"]
    logger.info(f"{final}: {total} records ({counts['resumed']} kept from this folder, {counts['carried']} carried "
                f"over, {counts['new']} new, {unfinished} unfinished) in {time.monotonic() - t0:.1f} s")
    for line in stage.summary() + [stage.damage.summary()]:
        if line:
            logger.info(f"{stage.name}: {line}")
    if unfinished:
        logger.warning(f"{unfinished} records are unfinished (null); rerun the same command to redo them")
    return final
