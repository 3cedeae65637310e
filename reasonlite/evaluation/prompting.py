"""Prompts of the evaluator: the seed's named chat templates, system prompts and prefix/suffix texts, and the prompt
of one problem.

    chat_template_name: default (the tokenizer's own) | one of CHAT_TEMPLATES | a path to a .jinja file
    system_prompt_name: disabled | ot | r1 | simplerl | helpful
    prefix_prompt_name / suffix_prompt_name: disabled | deepscaler | boxed

The names and texts are the seed's evaluator's (DeepMath's uni_eval.py and utils/chat_template.py). The templates
are written here anew, for what an evaluation renders (an optional system message, one user message, the generation
prompt), and give the seed's text for it character for character, with two exceptions stated where they are:
`llama-3.2-chat` keeps a fixed date and `acemath` says `\\boxed`. A tokenizer without a chat template (a base model)
gets the plain text instead, with a warning, where the seed stopped with an error.
"""
import json
import logging
from pathlib import Path

from reasonlite.prompts import INFER_SUFFIX

logger = logging.getLogger(__name__)

BOX_INSTRUCTION = INFER_SUFFIX.lstrip("\n")  # "Please reason step by step, and put your final answer within \boxed{}."
DEEPSCALER = "Let's think step by step and output the final answer within \\boxed{}."

SYSTEM_PROMPTS = {
    "disabled": None,  # no system message (ReasonLite, Qwen3, DeepSeek-R1 distills)
    "ot": (
        "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking process "
        "before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of "
        "analysis, summarizing, exploration, reassessment, reflection, backtracing, and iteration to develop "
        "well-considered thinking process. Please structure your response into two main sections: Thought and "
        "Solution. In the Thought section, detail your reasoning process using the specified format: "
        "<|begin_of_thought|> {thought with steps separated with '\n\n'} <|end_of_thought|> Each step should include "
        "detailed considerations such as analisying questions, summarizing relevant findings, brainstorming new ideas, "
        "verifying the accuracy of the current steps, refining any errors, and revisiting previous steps. In the "
        "Solution section, based on various attempts, explorations, and reflections from the Thought section, "
        "systematically present the final solution that you deem correct. The solution should remain a logical, "
        "accurate, concise expression style and detail necessary step needed to reach the conclusion, formatted as "
        "follows: <|begin_of_solution|> {final formatted, precise, and clear solution} <|end_of_solution|> Now, try "
        "to solve the following question through the above guidelines:"),
    "r1": (
        "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking process "
        "before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of "
        "analysis, summarizing, exploration, reassessment, reflection, backtracing, and iteration to develop "
        "well-considered thinking process. Please structure your response into two main sections: Thought and "
        "Solution. In the Thought section, detail your reasoning process using the specified format: <think> "
        "{thought with steps separated with '\n\n'} </think> Each step should include detailed considerations such as "
        "analisying questions, summarizing relevant findings, brainstorming new ideas, verifying the accuracy of the "
        "current steps, refining any errors, and revisiting previous steps. In the Solution section, based on various "
        "attempts, explorations, and reflections from the Thought section, systematically present the final solution "
        "that you deem correct. The solution should remain a logical, accurate, concise expression style and detail "
        "necessary step needed to reach the conclusion. Now, try to solve user's question through the above "
        "guidelines."),
    "simplerl": BOX_INSTRUCTION,  # models trained to expect the boxed instruction (DeepScaleR, Polaris, ...)
    "helpful": "You are a helpful assistant.",
}
# The seed glues its prefix to the problem with no separator; we keep that, so its prompts are reproduced exactly.
# Its suffix never reached a prompt (see README); ours follows a space, as in DeepScaleR's own prompt. "boxed" is ours:
# the instruction infer.py gives the teacher (and so the one a distilled student was trained with).
PREFIX_PROMPTS = {"disabled": "", "deepscaler": DEEPSCALER, "boxed": BOX_INSTRUCTION + "\n"}
SUFFIX_PROMPTS = {"disabled": "", "deepscaler": " " + DEEPSCALER, "boxed": INFER_SUFFIX}


# ---- the seed's named chat templates ------------------------------------------------------------------------------
def _lit(text):
    return json.dumps(text)  # a Jinja string literal of exactly `text` (Jinja reads JSON's escapes)


def _chatml(default_system=None, user_suffix=""):
    """Qwen-style `<|im_start|>role\\ncontent<|im_end|>` turns; the default system message when none is given."""
    default = f"{{{{- '<|im_start|>system\\n' + {_lit(default_system)} + '<|im_end|>\\n' }}}}" if default_system else ""
    return (
        "{%- if messages[0]['role'] == 'system' %}"
        "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- set rest = messages[1:] %}"
        f"{{%- else %}}{default}{{%- set rest = messages %}}{{%- endif %}}"
        "{%- for m in rest %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
        f"({_lit(user_suffix)} if m['role'] == 'user' else '') + '<|im_end|>\\n' }}}}{{%- endfor %}}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def _llama3(date_header):
    return (
        "{{- bos_token }}{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + " + _lit(date_header) + " }}"
        "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] | trim }}{%- set rest = messages[1:] %}"
        "{%- else %}{%- set rest = messages %}{%- endif %}{{- '<|eot_id|>' }}"
        "{%- for m in rest %}{{- '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + "
        "m['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")


def _one_question(name, before, between, generation=""):
    """Templates for one user message only (no system prompt), as the seed's alpaca and abel templates."""
    return (
        "{%- if messages | length == 1 and messages[0]['role'] == 'user' %}"
        f"{{{{- bos_token }}}}{{{{- {_lit(before)} + messages[0]['content'].strip() + {_lit(between)} }}}}"
        f"{{%- if add_generation_prompt %}}{{{{- {_lit(generation)} }}}}{{%- endif %}}"
        f"{{%- else %}}{{{{ raise_exception({_lit(name + ' takes one user message and no system prompt')}) }}}}"
        "{%- endif %}")


ALPACA = "Below is an instruction that describes a task. Write a response that appropriately completes the request." \
         "\n\n### Instruction:\n"
ORZ_PREAMBLE = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. The Assistant "
    "first thinks about the reasoning process in the mind and then provides the User with the answer. The reasoning "
    "process is enclosed within <think> </think> and answer is enclosed within <answer> </answer> tags, respectively, "
    "i.e., <think> reasoning process here </think> <answer> answer here </answer>. ")
ORZ_USER = ("User: You must put your answer inside <answer> </answer> tags, i.e., <answer> answer here </answer>. "
            "And your final answer will be extracted automatically by the \\boxed{} tag.\nThis is the problem:\n")
# Llama 3.2's own template prints today's date; a prompt that changes daily could not be resumed, so it is the date
# its template falls back to (the one llama-3.3-chat prints).
LLAMA_DATES = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
CHAT_TEMPLATES = {
    "llama-2-chat": (
        "{%- if messages[0]['role'] == 'system' %}"
        "{%- set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{%- set rest = messages[1:] %}"
        "{%- else %}{%- set sys = '' %}{%- set rest = messages %}{%- endif %}"
        "{%- for m in rest %}{%- if m['role'] == 'user' %}"
        "{{- bos_token }}{{- '[INST] ' + ((sys if loop.first else '') + m['content']).strip() + ' [/INST]' }}"
        "{%- else %}{{- ' ' + m['content'].strip() + ' ' }}{{- eos_token }}{%- endif %}{%- endfor %}"),
    "llama-3.1-chat": _llama3(""),
    "llama-3.2-chat": _llama3(LLAMA_DATES),
    "llama-3.3-chat": _llama3(LLAMA_DATES),
    "alpaca-chat-cot": _one_question("alpaca-chat-cot", ALPACA, "\n\n### Response:\n", "Let's think step by step."),
    "alpaca-chat": _one_question("alpaca-chat", ALPACA, "\n\n### Response:\n"),
    "abel": _one_question("abel", "Question:\n", "\nAnswer:\n", "Let's think step by step.\n"),
    "qwen-2.5-math": _chatml(BOX_INSTRUCTION),
    "qwq-preview": _chatml("You are a helpful and harmless assistant. You are Qwen developed by Alibaba. "
                           "You should think step-by-step."),
    "qwen-2": _chatml("You are a helpful assistant"),
    "qwen-2.5": _chatml("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
    # The seed's string reaches Jinja as "\boxed", which Jinja reads as a backspace and "oxed"; this is the text meant.
    "acemath": _chatml(None, "\nPlease give a step-by-step answer and use a \\boxed command to denote the final "
                             "answer."),
    "r1-distill-qwen": (
        "{{- bos_token }}{%- for m in messages %}{%- if m['role'] == 'system' %}{{- m['content'] }}{%- endif %}"
        "{%- endfor %}{%- for m in messages %}"
        "{%- if m['role'] == 'user' %}{{- '<\uff5cUser\uff5c>' + m['content'] }}"
        "{%- elif m['role'] == 'assistant' %}{{- '<\uff5cAssistant\uff5c>' + m['content'] + "
        "'<\uff5cend\u2581of\u2581sentence\uff5c>' }}{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<\uff5cAssistant\uff5c><think>\\n' }}{%- endif %}"),
    "orz": (
        f"{{{{- bos_token }}}}{{{{- {_lit(ORZ_PREAMBLE)} }}}}{{%- for m in messages %}}"
        f"{{%- if m['role'] == 'user' %}}{{{{- {_lit(ORZ_USER)} + m['content'] + '\\n' }}}}"
        "{%- elif m['role'] == 'assistant' %}{{- 'Assistant: <think>' + m['content'] + '</answer>\\n' }}{%- endif %}"
        "{%- endfor %}{%- if add_generation_prompt %}{{- 'Assistant: <think>' }}{%- endif %}"),
}
NO_SYSTEM_TEMPLATES = ("alpaca-chat-cot", "alpaca-chat", "abel")  # the seed's raise on a system message


def template_problem(opts):
    """The error (a string) of a chat_template_name / system_prompt_name pair, or None."""
    name = opts["chat_template_name"]
    if name != "default" and name not in CHAT_TEMPLATES and not Path(name).is_file():
        return f"{name!r} is neither `default`, one of {', '.join(CHAT_TEMPLATES)}, nor a template file"
    if name in NO_SYSTEM_TEMPLATES and opts["system_prompt_name"] != "disabled":
        return f"{name!r} takes no system prompt; set system_prompt_name: disabled"
    return None


def load_tokenizer(opts):
    """The tokenizer of base_model with the chat template the options name (tok.chat_template None: plain prompts)."""
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(opts["base_model"])
    except Exception as e:  # transformers raises many kinds here; all mean "not a model folder or hub id"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"cannot load the tokenizer of base_model {opts['base_model']!r} ({first})") from None
    name = opts["chat_template_name"]
    if name in CHAT_TEMPLATES:
        tok.chat_template = CHAT_TEMPLATES[name]
    elif name != "default":
        tok.chat_template = Path(name).read_text(encoding="utf-8")
    if not tok.chat_template:
        logger.warning(f"the tokenizer of {opts['base_model']} has no chat template: prompts are the plain problem "
                       f"text (set chat_template_name to one of {', '.join(CHAT_TEMPLATES)} or a .jinja file for "
                       "a chat model)")
    return tok


def user_text(opts, body):
    """What the user message says: the named prefix, the problem (or its lettered options), the named suffix."""
    return PREFIX_PROMPTS[opts["prefix_prompt_name"]] + body + SUFFIX_PROMPTS[opts["suffix_prompt_name"]]


def render(opts, tok, body):
    """(prompt text, prompt token ids) of one problem's body."""
    system = SYSTEM_PROMPTS[opts["system_prompt_name"]]
    text = user_text(opts, body)
    if tok.chat_template:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template already holds any BOS token; tokenizing with special tokens would add a second one.
        return prompt, tok(prompt, add_special_tokens=False)["input_ids"]
    prompt = (system + "\n\n" if system else "") + text
    return prompt, tok(prompt, add_special_tokens=True)["input_ids"]  # a base model's BOS, as vLLM would add


def build_prompts(opts, problems, tok):
    """Add "prompt" and "prompt_ids" to each problem (its "body": the problem text, with options where it has any)."""
    for p in problems:
        p["prompt"], p["prompt_ids"] = render(opts, tok, p["body"])
