"""Filters of the training-data step that look at a kept conversation: its length in the student's tokens, and
whether the same answer to the same problem was already kept."""
from reasonlite.jsonl import DataError


class TokenCounter:
    """Token counts of whole conversations as the student sees them (its chat template), in batches."""

    def __init__(self, tokenizer_path):
        from transformers import AutoTokenizer
        try:
            self.tok = AutoTokenizer.from_pretrained(tokenizer_path)
        except Exception as e:
            raise DataError(f"--tokenizer {tokenizer_path}: cannot load it ({type(e).__name__})") from None

    def __call__(self, conversations):
        if self.tok.chat_template:
            texts = [self.tok.apply_chat_template(m, tokenize=False) for m in conversations]
        else:
            texts = ["\n".join(x["content"] for x in m) for m in conversations]
        # One call per batch: the Rust tokenizer spreads a batch over all cores.
        return [len(ids) for ids in self.tok(texts, add_special_tokens=False)["input_ids"]]


def dedup_key(messages):
    """Problem and answer with whitespace runs collapsed: two records that differ only in spacing are one."""
    return " ".join(messages[0]["content"].split()) + "\0" + " ".join(messages[1]["content"].split())
