"""The evaluator's options and prompts as the seed's evaluator spells them: option names, defaults and meanings, the
named chat templates, system prompts, the DeepScaleR prefix/suffix, and the plain-prompt fallback. In-process and fast,
except one run of `python3 eval.py --help`."""
import logging
import os
import subprocess
import sys

import pytest

from conftest import ROOT, write_yaml

from reasonlite.config import ConfigError
from reasonlite.evaluation import tasks
from reasonlite.evaluation.evaluate import new_tokens
from reasonlite.evaluation.options import OPTIONS, parse_args, resolve
from reasonlite.evaluation.prompting import CHAT_TEMPLATES, SYSTEM_PROMPTS, load_tokenizer, render
from reasonlite.vllm_flags import engine_kwargs

# The seed evaluator's options (ReasonLite eval/eval.py = DeepMath uni_eval.py) and their defaults.
SEED_DEFAULTS = {
    "base_model": None, "chat_template_name": "default", "system_prompt_name": "disabled",
    "prefix_prompt_name": "disabled", "suffix_prompt_name": "disabled", "output_dir": None, "bf16": False,
    "fp16": False, "tensor_parallel_size": 8, "enforce_eager": False, "gpu_memory_utilization": 0.8,
    "data_dir": None, "data_id": None, "split": None, "subset": None, "start_idx": None, "end_idx": None,
    "max_model_len": 32768, "temperature": 0.6, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "n": 1,
    "seed": 42,
}
SEED_CHAT_TEMPLATES = ["llama-2-chat", "llama-3.1-chat", "llama-3.2-chat", "llama-3.3-chat", "alpaca-chat-cot",
                       "alpaca-chat", "abel", "qwen-2.5-math", "qwq-preview", "qwen-2", "qwen-2.5", "acemath",
                       "r1-distill-qwen", "orz"]
Q = "What is $1+1$?"


def options(**given):
    return resolve({"base_model": "unused", "output_dir": "-", "data_id": "zwhe99/aime90", **given},
                   lambda key: "test", "test")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real (tiny, untrained) byte-level tokenizer saved as a model folder: one with a chat template, one without."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>"])
    base = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(base / "plain")
    fast.chat_template = CHAT_TEMPLATES["qwen-2"]
    fast.save_pretrained(base / "chat")
    return base


def test_seed_option_names_and_defaults():
    assert list(OPTIONS)[:len(SEED_DEFAULTS)] == list(SEED_DEFAULTS)
    opts = options()
    assert {k: opts[k] for k in SEED_DEFAULTS if k not in ("base_model", "output_dir", "data_id")} == \
        {k: v for k, v in SEED_DEFAULTS.items() if k not in ("base_model", "output_dir", "data_id")}
    assert list(CHAT_TEMPLATES) == SEED_CHAT_TEMPLATES
    assert list(SYSTEM_PROMPTS) == ["disabled", "ot", "r1", "simplerl", "helpful"]


def test_seed_style_command_line():
    """The seed's scripts: `--bf16 True`, a split given as a number; python-fire's `--tensor-parallel-size`."""
    opts, debug = parse_args(["--base_model", "m", "--output_dir", "o", "--data_id", "zwhe99/aime90", "--bf16", "True",
                              "--tensor-parallel-size", "1", "--split", "2024", "--max-model-len", "65536",
                              "--enforce_eager", "--fp16=false", "--prefix_prompt_name", "deepscaler"])
    assert (opts["bf16"], opts["fp16"], opts["enforce_eager"], opts["tensor_parallel_size"]) == (True, False, True, 1)
    assert opts["split"] == "2024" and opts["max_model_len"] == 65536 and not debug
    with pytest.raises(ConfigError, match="key 'chat_template_name' 'llama-9' is neither `default`, one of "
                                          "llama-2-chat,"):
        options(chat_template_name="llama-9")
    with pytest.raises(ConfigError, match="'abel' takes no system prompt; set system_prompt_name: disabled"):
        options(chat_template_name="abel", system_prompt_name="simplerl")
    with pytest.raises(ConfigError, match="key 'engine_max_model_len' must be at least 1, got 0"):
        options(engine_max_model_len=0)


def test_eval_py_help_lists_the_seed_options():
    proc = subprocess.run([sys.executable, "eval.py", "--help"], cwd=ROOT / "eval", capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    seed_part = proc.stdout.split("the seed evaluator's options:")[1].split("this project's additions:")[0]
    for name in SEED_DEFAULTS:
        assert f"--{name}" in seed_part, name
    assert "[default: 8]" in seed_part and "[default: 32768]" in seed_part
    assert "--server_url" in proc.stdout.split("this project's additions:")[1]


def test_start_py_takes_the_seed_config_path_flag(tmp_path, capsys):
    cfg = write_yaml(tmp_path / "bad.yaml", [{"base_model": "m", "data_id": "zwhe99/aime90", "n": 0}])
    for flag in ("--config-path", "--config_path", "-c"):
        with pytest.raises(SystemExit) as e:
            tasks.main([flag, str(cfg), "--result_dir", str(tmp_path / "result")])
        assert e.value.code == 1
        assert f"error: {cfg}: block 1: key 'n' must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "result").exists()


def test_max_model_len_means_new_tokens_as_in_the_seed():
    """The seed hands max_model_len to vLLM as max_tokens and leaves the engine's context at the model's own."""
    opts = options(max_model_len=1000)
    assert "max_model_len" not in engine_kwargs(opts)
    assert engine_kwargs(opts)["dtype"] == "float32" and engine_kwargs(opts)["tensor_parallel_size"] == 8
    problem = {"prompt_ids": list(range(100))}
    assert new_tokens(opts, problem, None) == 1000
    assert new_tokens(opts, problem, 4096) == 1000
    assert new_tokens(opts, problem, 600) == 500  # the context stops it first, as the engine would
    assert new_tokens(options(max_model_len=1000, max_tokens=64), problem, 4096) == 64
    opts = options(engine_max_model_len=2048, bf16=True)
    assert engine_kwargs(opts)["max_model_len"] == 2048 and engine_kwargs(opts)["dtype"] == "bfloat16"


def test_named_templates_and_prompts(model_dir):
    tok = load_tokenizer(options(base_model=str(model_dir / "chat"), chat_template_name="qwen-2.5"))
    prompt, ids = render(options(system_prompt_name="simplerl"), tok, Q)
    assert prompt == ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}."
                      "<|im_end|>\n<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n")
    assert tok.decode(ids) == prompt
    prompt, _ = render(options(), tok, Q)  # no system prompt: the template's own default
    assert prompt.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.")

    # DeepScaleR: the seed glues its prefix to the problem; our suffix follows a space
    prompt, _ = render(options(prefix_prompt_name="deepscaler"), tok, Q)
    assert "<|im_start|>user\nLet's think step by step and output the final answer within \\boxed{}.What is" in prompt
    prompt, _ = render(options(suffix_prompt_name="deepscaler"), tok, Q)
    assert "What is $1+1$? Let's think step by step and output the final answer within \\boxed{}.<|im_end|>" in prompt

    # the other names set the template exactly as load_tokenizer does (a tokenizer load costs a second each)
    tok.chat_template = CHAT_TEMPLATES["llama-2-chat"]
    prompt, _ = render(options(system_prompt_name="helpful"), tok, " " + Q + "\n")
    assert prompt == "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\n What is $1+1$? [/INST]"
    tok.chat_template = CHAT_TEMPLATES["r1-distill-qwen"]
    prompt, _ = render(options(), tok, Q)
    assert prompt == "<\uff5cUser\uff5c>What is $1+1$?<\uff5cAssistant\uff5c><think>\n"
    tok.chat_template = CHAT_TEMPLATES["llama-3.2-chat"]
    prompt, _ = render(options(), tok, Q)
    assert "Today Date: 26 Jul 2024\n\n<|eot_id|>" in prompt  # fixed, so that a resumed run builds the same prompt

    template = model_dir / "mine.jinja"
    template.write_text("Q: {{ messages[-1]['content'] }}\nA:")
    tok = load_tokenizer(options(base_model=str(model_dir / "chat"), chat_template_name=str(template)))
    assert render(options(), tok, Q)[0] == "Q: What is $1+1$?\nA:"


def test_a_tokenizer_without_a_chat_template_gets_the_plain_text(model_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="reasonlite"):
        tok = load_tokenizer(options(base_model=str(model_dir / "plain")))
    assert "has no chat template: prompts are the plain problem text" in caplog.text
    prompt, ids = render(options(), tok, Q)
    assert prompt == Q and tok.decode(ids) == Q
    prompt, _ = render(options(system_prompt_name="simplerl", suffix_prompt_name="boxed"), tok, Q)
    assert prompt == SYSTEM_PROMPTS["simplerl"] + "\n\n" + Q + "\nPlease reason step by step, and put your final " \
                                                               "answer within \\boxed{}."
    # a named template makes the same tokenizer a chat tokenizer
    tok = load_tokenizer(options(base_model=str(model_dir / "plain"), chat_template_name="qwen-2"))
    assert render(options(), tok, Q)[0].startswith("<|im_start|>system\nYou are a helpful assistant<|im_end|>")
