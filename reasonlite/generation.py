"""infer: num_answer generations per problem of info.jsonl into answer_origin/, one record per (problem, j).

Sample j of a problem is requested with seed j, so a rerun, a resumed run or another shard asks for the same
answer (on CPU the text is the same; GPU kernels are not batch-invariant, so there it is the same request only).
"""
import time

from reasonlite import jsonl
from reasonlite.config import info_path
from reasonlite.jsonl import DataError, IndexSet
from reasonlite.llm import LLM
from reasonlite.prompts import infer_prompt
from reasonlite.runner import Stage


def one_answer(index):
    """j when an info.jsonl index names one answer (`pol:0_3`: exactly one `_`, then digits), else None.

    The seed expands an index with exactly one `_` no further, so a user can re-request chosen answers. It does so
    for any tail; a non-numeric tail (`open_math:12`) is a problem index here, as its seed would be 0 there.
    """
    head, sep, tail = index.rpartition("_")
    return int(tail) if sep and "_" not in head and tail.isdigit() else None


class Infer(Stage):
    """Generate num_answer answers per problem of info.jsonl into answer_origin/."""

    name = "answer_origin"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.info_path = info_path(cfg)
        self.llm = None

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
        self.llm = LLM(self.cfg)  # loads the chat template now, so a bad tokenizer fails before any output

    def items(self):
        for _, info in self._info_records():
            model_input = self.llm.build(infer_prompt(info["prompt"]))
            one = one_answer(info["index"])
            if one is not None:  # the seed's rule: "pol:0_3" asks for answer 3 of pol:0 alone
                yield {"index": info["index"], "seed": one, "info": info, "model_input": model_input}
                continue
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
        await self.llm.__aenter__()
        self.concurrency = self.llm.concurrency
        return self

    async def __aexit__(self, *exc):
        await self.llm.__aexit__(*exc)

    async def process(self, item):
        gen = await self.llm.generate(item["model_input"], item["seed"])
        return None if gen is None else self._record(item, gen.model_output, gen.answer)

    def progress(self):
        return f"{self.llm.tokens / max(time.monotonic() - self.t0, 1e-9):.0f} tok/s"

    def summary(self):
        if self.llm.model is None:
            return []
        faults = self.llm.pool.fault_summary()
        lines = [f"{self.llm.tokens} tokens generated ({self.progress()}) by {self.llm.model}"]
        return lines + ([faults] if faults else [])
