"""Prompts: the seed's texts, the harmony wrapper for gpt-oss, and chat templates for every other model.

The texts are the seed's, character for character, because the released data was made with them: changing a space
changes what the teacher writes.
"""
from functools import lru_cache

INFER_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."

# The seed's harmony preamble for gpt-oss, including its fixed dates, so that regenerated data matches the release.
HARMONY_TEMPLATE = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
    "Current date: 2025-08-12\n"
    "\n"
    "reasoning: {reasoning_level}\n"
    "\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
    "<|start|>developer<|message|><|end|><|start|>user<|message|>\n"
    "{prompt}\n"
    "<|end|><|start|>assistant"
)


def infer_prompt(problem):
    """The user text for one problem: the problem and the seed's instruction to box the answer."""
    return problem + INFER_SUFFIX


def vote_prompt(answers):
    """The seed's prompt asking the model to count equal answers among n answers (vote_backend: llm)."""
    listed = "".join(f"Answer Index {c}:\n{a}\n\n" for c, a in enumerate(answers))
    return (
        "I have a math problem, and a large language model has generated n answers. Please help me summarize how "
        "many times each unique answer appears. If two answers are very similar, you can group them together. "
        f"Here are the n answers:\n\n{listed}\n...\n\n"
        "Please output the results strictly in JSON, with the final answer enclosed like this:\n\n"
        '\\boxed{"answer1": count1, "answer2": count2, ...}\n\n'
        "For example, if the input answers are [12, x=25, 25, 25, 12, -2], the output should be:\n\n"
        '\\boxed{"25": 3, "12": 2, "-2": 1}\n'
    )


def judge_prompt(target_answer, model_answer):
    """The seed's prompt asking the model whether two answers match (judge_backend: llm or hybrid)."""
    return (
        "You are a math reasoning assistant. Your task is to check if the **model's answer** matches the "
        "**ground truth answer**.  \n\n"
        "- Consider mathematical equivalence, not just string matching.  \n"
        "- Simplify or transform expressions if needed.  \n"
        "- Only return the result in the required JSON format.\n\n"
        "Here is the question and answers:\n\n"
        f"Ground truth answer:\n{target_answer}\n\n"
        f"Model's answer:\n{model_answer}\n\n"
        "Please analyze step by step and determine if the two answers are mathematically the same. Output strictly "
        'in JSON, put your final answer within \\boxed{"match": true or false}.\n'
    )



def is_harmony_model(cfg):
    if cfg.prompt_format != "auto":
        return cfg.prompt_format == "harmony"
    return "gpt-oss" in cfg.model_path.lower()


@lru_cache(maxsize=4)
def _tokenizer(path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(path)


class PromptBuilder:
    """Turns a user text into the full model input for the configured model family."""

    def __init__(self, cfg):
        self.harmony = is_harmony_model(cfg)
        self.reasoning_level = cfg.reasoning_level
        self.tokenizer_path = cfg.tokenizer_path or cfg.model_path
        if not self.harmony:
            self._chat_tokenizer()  # fail now, with a clear message, not on the first record

    def _chat_tokenizer(self):
        try:
            tok = _tokenizer(self.tokenizer_path)
        except Exception as e:  # transformers raises many kinds here; all mean the same to the user
            raise ValueError(f"cannot load the tokenizer at {self.tokenizer_path} for its chat template "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); set "
                             "tokenizer_path in the config, or prompt_format: harmony for gpt-oss") from None
        if not tok.chat_template:
            raise ValueError(f"the tokenizer at {self.tokenizer_path} has no chat template; set tokenizer_path "
                             "to one that has, or prompt_format: harmony")
        return tok

    def __call__(self, user_text):
        if self.harmony:
            return HARMONY_TEMPLATE.format(reasoning_level=self.reasoning_level, prompt=user_text)
        return self._chat_tokenizer().apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True)
