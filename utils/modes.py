"""The pipeline's modes over record streams, and the one runner they share.

A mode (a Stage) says which items it must produce records for, how to produce one, and when a record counts as
finished. The runner does the rest the same way for every mode: it checks all input before writing anything,
carries over finished records of earlier runs, sends the missing items through a bounded queue to async workers,
appends records as they arrive, writes unfinished records for what failed, and renames the shard into place.
"""
import asyncio
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from utils import jsonl
from utils.client import ServerPool
from utils.config import api_key
from utils.jsonl import DataError, IndexSet, shard_of
from utils.prompts import PromptBuilder, infer_prompt
from utils.servers import client_urls


def log(msg):
    tqdm.write(msg, file=sys.stderr)


class Stage:
    """One mode. Items are dicts with an 'index'; records are what the stage's files hold."""

    name = ""  # the stage's folder under base_data_path

    def __init__(self, cfg):
        self.cfg = cfg
        self.base = Path(cfg.base_data_path)
        self.stats = {}

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

    def summary(self):
        return ""


# ---- infer ---------------------------------------------------------------------------------------------------
class Infer(Stage):
    """Generate num_answer answers per problem of info.jsonl into answer_origin/."""

    name = "answer_origin"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.info_path = self.base / cfg.data_info_name
        self.prompt_builder = None
        self.pool = None
        self.model = None
        self.tokens = 0
        self.t0 = time.monotonic()

    def _info_records(self):
        for lineno, rec in jsonl.read_records(self.info_path):
            rec = dict(rec)
            rec.setdefault("index", lineno - 1)  # the seed's default: the record's position
            rec["index"] = str(rec["index"])
            yield lineno, rec

    def check_inputs(self):
        if not self.info_path.is_file():
            raise DataError(f"{self.info_path}: info file not found (base_data_path + data_info_name)")
        seen = IndexSet()
        count = 0
        for lineno, rec in self._info_records():
            where = f"{self.info_path}:{lineno}"
            if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
                raise DataError(f"{where}: field 'prompt' is missing or not a non-empty string")
            if not rec["index"] or rec["index"] == "None":
                raise DataError(f"{where}: field 'index' is empty")
            if rec["index"] in seen:
                raise DataError(f"{where}: field 'index' repeats an earlier index {rec['index']!r}")
            seen.add(rec["index"])
            count += 1
        if count == 0:
            raise DataError(f"{self.info_path}: no problems in the file")
        self.prompt_builder = PromptBuilder(self.cfg)

    def items(self):
        for _, info in self._info_records():
            model_input = self.prompt_builder(infer_prompt(info["prompt"]))
            for j in range(self.cfg.num_answer):
                yield {"index": f"{info['index']}_{j}", "seed": j, "info": info, "model_input": model_input}

    def is_finished(self, record):
        return record.get("answer") is not None

    def _record(self, item, model_output, answer):
        return {"info": item["info"], "index": item["index"], "model_input": item["model_input"],
                "model_output": model_output, "prompt": item["info"]["prompt"], "answer": answer}

    def unfinished(self, item):
        return self._record(item, None, None)

    async def __aenter__(self):
        cfg = self.cfg
        self.pool = ServerPool(client_urls(cfg), api_key=api_key(cfg),
                               max_inflight_per_server=cfg.max_inflight_per_server,
                               request_timeout=cfg.request_timeout, max_retries=cfg.max_retries,
                               server_down_timeout=cfg.server_down_timeout, log=log)
        await self.pool.__aenter__()
        try:
            if cfg.wait_servers_up:
                await self.pool.wait_until_up(cfg.server_start_timeout, progress=log)
            self.model = await self.pool.model_name()
        except BaseException:
            await self.pool.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc):
        await self.pool.__aexit__(*exc)

    async def process(self, item):
        cfg = self.cfg
        payload = {
            "model": self.model, "prompt": item["model_input"], "echo": True, "seed": item["seed"], "n": 1,
            "stream": False, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens,
            "skip_special_tokens": False, "stop": cfg.stop,
        }
        data = await self.pool.post("/v1/completions", payload)
        if data is None:
            return None
        text = data["choices"][0].get("text")
        if not isinstance(text, str):
            return None
        self.tokens += (data.get("usage") or {}).get("completion_tokens", 0)
        # With echo the text is the prompt followed by the generation; the prompt round-trips through the
        # tokenizer unchanged for byte-level BPE, which is what the seed's slicing assumes too.
        return self._record(item, text, text[len(item["model_input"]):])

    def rate(self):
        return f"{self.tokens / max(time.monotonic() - self.t0, 1e-9):.0f} tok/s"

    def summary(self):
        return f"{self.tokens} tokens generated ({self.rate()}), model {self.model}"


STAGES = {"infer": Infer}


# ---- the runner ----------------------------------------------------------------------------------------------
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def run_folder_name(save_name):
    if save_name is None:
        return datetime.now().strftime("%Y%m%d_%H%M%S")
    if not NAME_RE.match(save_name):
        raise DataError(f"-s {save_name!r}: a run folder name is letters, digits and _ . : - (no path)")
    return save_name


async def _run(stage, folder, rank, world, flush_every):
    part = folder / f"{rank}_{world}.jsonl.part"
    final = folder / f"{rank}_{world}.jsonl"
    mine = lambda index: shard_of(index, world) == rank  # noqa: E731

    expected = IndexSet()
    for item in stage.items():
        if mine(item["index"]):
            expected.add(item["index"])

    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if final.exists() and not part.exists():
        os.replace(final, part)  # redoing a completed shard in place: keep its finished records, redo the rest
    done, resumed_here = (jsonl.reopen_part(part, stage.is_finished, expected) if part.exists()
                          else (IndexSet(), 0))
    writer = jsonl.ShardWriter(part, flush_every=flush_every)
    counts = {"resumed": resumed_here, "carried": 0, "new": 0, "failed": 0}
    try:
        for src in jsonl.resume_sources(folder.parent, exclude=folder):
            for rec in jsonl.iter_folder(src):
                index = rec.get("index")
                if (isinstance(index, str) and stage.is_finished(rec) and mine(index) and index in expected
                        and index not in done):
                    writer.write(rec)
                    done.add(index)
                    counts["carried"] += 1
        writer.flush()

        todo = len(expected) - resumed_here - counts["carried"]
        if todo:  # nothing left means no server is needed: a finished run can be re-read without one
            await _process_missing(stage, todo, mine, done, writer, counts, f"{stage.name} {rank}_{world}")

        for item in stage.items():
            if mine(item["index"]) and item["index"] not in done:
                writer.write(stage.unfinished(item))
        writer.finish(final)
    except BaseException:
        writer.close()
        # A run that failed before producing a record (no server, say) leaves nothing behind: what it carried
        # over is still in the folders it came from.
        if created and counts["new"] == 0 and part.exists():
            part.unlink()
            for d in (folder, folder.parent):
                try:
                    d.rmdir()
                except OSError:
                    break
        raise
    return final, counts, len(expected)


async def _process_missing(stage, todo, mine, done, writer, counts, desc):
    """Send every item of this shard not yet done through async workers; append each finished record."""
    async with stage:
        bar = tqdm(total=todo, desc=desc, unit="rec", dynamic_ncols=True, mininterval=0.5, file=sys.stderr)
        # A bounded queue keeps memory flat however many items there are; one worker per server slot.
        n_workers = max(1, getattr(getattr(stage, "pool", None), "total_slots", 64))
        queue = asyncio.Queue(maxsize=2 * n_workers)

        async def produce():
            for item in stage.items():
                if mine(item["index"]) and item["index"] not in done:
                    await queue.put(item)
            for _ in range(n_workers):
                await queue.put(None)

        async def work():
            while (item := await queue.get()) is not None:
                record = await stage.process(item)
                if record is None:
                    counts["failed"] += 1
                else:
                    writer.write(record)
                    done.add(item["index"])
                    counts["new"] += 1
                bar.update(1)
                if hasattr(stage, "rate"):
                    bar.set_postfix_str(f"failed {counts['failed']}, {stage.rate()}", refresh=False)

        tasks = [asyncio.ensure_future(produce())] + [asyncio.ensure_future(work()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            bar.close()


def run(cfg, mode, rank=0, world=1, save_name=None):
    """Run one mode for one shard and return the path of the shard file it completed."""
    if not 0 <= rank < world:
        raise DataError(f"-l {rank} -g {world}: the rank must be in 0..{world - 1}")
    stage = STAGES[mode](cfg)
    stage.check_inputs()
    stage_dir = stage.base / stage.name
    folder = stage_dir / run_folder_name(save_name)
    others = {w for (_, w, _) in jsonl.shard_files(folder) if w != world}
    if others:
        raise DataError(f"{folder}: holds shards of -g {sorted(others)[0]}, not -g {world}; use another -s")
    t0 = time.monotonic()
    final, counts, total = asyncio.run(_run(stage, folder, rank, world, cfg.flush_every))
    unfinished = total - counts["resumed"] - counts["carried"] - counts["new"]
    print(f"{final}: {total} records ({counts['resumed']} kept from this folder, {counts['carried']} carried over, "
          f"{counts['new']} new, {unfinished} unfinished) in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    extra = stage.summary()
    if extra:
        print(f"{stage.name}: {extra}", file=sys.stderr)
    if unfinished:
        print(f"{unfinished} records are unfinished (null); rerun the same command to redo them", file=sys.stderr)
    return final
