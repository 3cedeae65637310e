"""Prompts of the evaluator: the named system/prefix/suffix texts and the chat template that wraps a problem.

chat_template_name: `default` (the tokenizer's own template) or a path to a .jinja file.
"""
from pathlib import Path

from reasonlite.prompts import INFER_SUFFIX

# Kept small on purpose. chat_template_name: `default` (the tokenizer's own template) or a path to a .jinja file.
BOX_INSTRUCTION = INFER_SUFFIX.lstrip("\n")  # the seed's "Please reason step by step, ... within \boxed{}."
SYSTEM_PROMPTS = {
    "disabled": None,  # no system message (ReasonLite, Qwen3, DeepSeek-R1 distills)
    "simplerl": BOX_INSTRUCTION,  # for models trained to expect the boxed instruction (DeepScaleR, Polaris, ...)
}
PREFIX_PROMPTS = {"disabled": "", "boxed": BOX_INSTRUCTION + "\n"}
SUFFIX_PROMPTS = {"disabled": "", "boxed": INFER_SUFFIX}  # "boxed" is what infer.py asks the teacher


def load_tokenizer(opts):
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(opts["base_model"])
    except Exception as e:  # transformers raises many kinds here; all mean "not a model folder or hub id"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot load the tokenizer of base_model {opts['base_model']!r} ({first})") from None
    if opts["chat_template_name"] != "default":
        tok.chat_template = Path(opts["chat_template_name"]).read_text(encoding="utf-8")
    if not tok.chat_template:
        raise ValueError(f"the tokenizer of {opts['base_model']} has no chat template; set chat_template_name "
                         "to a template file")
    return tok


def build_prompts(opts, problems, tok):
    """Add "prompt", "prompt_ids" and "max_tokens" to each problem."""
    system = SYSTEM_PROMPTS[opts["system_prompt_name"]]
    prefix, suffix = PREFIX_PROMPTS[opts["prefix_prompt_name"]], SUFFIX_PROMPTS[opts["suffix_prompt_name"]]
    for p in problems:
        messages = ([{"role": "system", "content": system}] if system else []) + \
            [{"role": "user", "content": prefix + p["problem"] + suffix}]
        p["prompt"] = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already holds any BOS token; tokenizing again with special tokens would add a second one,
        # so both backends get these ids rather than the text.
        p["prompt_ids"] = tok(p["prompt"], add_special_tokens=False)["input_ids"]
        room = opts["max_model_len"] - len(p["prompt_ids"])
        if room < 1:
            raise ValueError(f"problem {p['idx']}: its prompt has {len(p['prompt_ids'])} tokens, which leaves no "
                             f"room under max_model_len {opts['max_model_len']}")
        # The seed asked for max_model_len new tokens; the engine stops at the context anyway, so this is the same.
        p["max_tokens"] = min(room, opts["max_tokens"]) if opts["max_tokens"] else room
