"""Supervised fine-tuning of the student on format_data/ with trl's SFTTrainer, from an open-r1-style YAML config.

    bash train/stage1.sh <machine_rank> <main_process_ip>     # accelerate launch of this script on 4 nodes x 8 GPUs
    accelerate launch --config_file train/accelerate/zero1.yaml train/sft.py --config train/config_stage1.yaml
    python3 train/sft.py --config train/config_tiny.yaml --max_steps 5 --output_dir runs/train/try   # one process

Any key of the config may be overridden on the command line (`--key value`, trl's parser). The seed's configs are
read as written: keys that current trl/transformers renamed or dropped (torch_dtype, dataset_split, warmup_ratio,
overwrite_output_dir, an inline chat_template) are translated with a warning, and a key no one knows is an error
naming its line. `dataset_name` is a hub id, a folder of `data_part*.jsonl` (what saving_to_training_format.py
writes) or one .jsonl file. Before training, a preflight renders one sample through the student's chat template and
stops if the template would train the model never to stop.
"""
import os
import sys
from importlib.util import find_spec
from pathlib import Path

import yaml

from reasonlite.cli import debug_enabled
from reasonlite.config import ConfigError, key_lines, unknown_key
from reasonlite.jsonl import DataError

# Keys of the seed's configs that current trl/transformers renamed: the new name, and why.
RENAMED = {
    "torch_dtype": ("dtype", "transformers 5 renamed it"),
    "dataset_split": ("dataset_train_split", "trl's name for it"),
    "warmup_ratio": ("warmup_steps", "transformers 5 dropped warmup_ratio; a warmup_steps below 1 is that ratio"),
}
DROPPED = {"overwrite_output_dir": "transformers 5 dropped it; output_dir is written into either way"}
# Attention implementations that need a GPU and a package; sdpa is what transformers uses without them.
FLASH = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


class PreflightError(ValueError):
    """The data and chat template would train a model that cannot stop; nothing was trained."""


def is_main():
    # One process a node speaks (accelerate/torchrun set LOCAL_RANK; a single process has none), so that on
    # several nodes each node's terminal shows the preflight and any error once.
    return os.environ.get("LOCAL_RANK", "0") == "0"


def say(msg, file=sys.stdout):
    if is_main():
        print(msg, file=file, flush=True)


def leave(code):
    """Exit now. A gloo process group can hang in its teardown after a multi-process run; os._exit skips it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ---- config ---------------------------------------------------------------------------------------------------
def make_parser():
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser
    return TrlParser((ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig))


def translate(raw, known, path, lines=None):
    """The seed's keys as trl's parser takes them: (values, inline chat template or None, warnings).

    Raises ConfigError listing every key that is neither known nor a known rename, one per line.
    """
    lines = lines or {}
    values, notes, errors = {}, [], []
    template = None
    for key, value in raw.items():
        where = f"{path}:{lines[key]}" if key in lines else path
        if key == "env":  # trl's parser sets these environment variables too
            if not isinstance(value, dict):
                errors.append(f"{where}: key 'env' must be a mapping of variable names to values")
            else:
                os.environ.update({str(k): str(v) for k, v in value.items()})
        elif key == "chat_template":
            if not isinstance(value, str):
                errors.append(f"{where}: key 'chat_template' must be a template string")
            elif raw.get("chat_template_path"):
                errors.append(f"{where}: give either chat_template or chat_template_path, not both")
            else:
                template = value
                notes.append(f"{where}: an inline 'chat_template' (trl reads chat_template_path): set on the "
                             "student's tokenizer instead and saved with the checkpoint")
        elif key in RENAMED:
            new, why = RENAMED[key]
            if new in raw:
                errors.append(f"{where}: both '{key}' and its new name '{new}' are set; keep '{new}'")
            elif key == "warmup_ratio" and not (isinstance(value, (int, float)) and 0 <= value < 1):
                errors.append(f"{where}: key 'warmup_ratio' must be a number in [0, 1), got {value!r}")
            else:
                values[new] = value
                notes.append(f"{where}: '{key}' is now '{new}' ({why}); translated")
        elif key in DROPPED:
            notes.append(f"{where}: '{key}' ignored ({DROPPED[key]})")
        elif key in known:
            values[key] = value
        else:
            errors.append(unknown_key(where, key, known | set(RENAMED)))
    if errors:
        raise ConfigError("\n".join(errors))
    return values, template, notes


def translate_cli(args):
    """Renamed keys given on the command line (`--torch_dtype bfloat16`) get their new names too."""
    out, notes = [], []
    for arg in args:
        name, eq, rest = arg.partition("=")
        if name.startswith("--") and name[2:] in RENAMED:
            new = RENAMED[name[2:]][0]
            notes.append(f"command line: '{name}' is now '--{new}'; translated")
            arg = f"--{new}{eq}{rest}"
        out.append(arg)
    return out, notes


def parse(argv):
    """(script_args, training_args, model_args, dataset_args, inline template, warnings) from --config and flags."""
    argv = list(argv)
    raw, lines, path = {}, {}, None
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a YAML file")
        path = argv[i + 1]
        del argv[i:i + 2]
        try:
            text = Path(path).read_text(encoding="utf-8")
            raw = yaml.safe_load(text) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
        lines = key_lines(text)
    parser = make_parser()
    known = {a.dest for a in parser._actions} - {"help"}
    values, template, notes = translate(raw, known, path or "<config>", lines)
    argv, cli_notes = translate_cli(argv)
    parser.set_defaults_with_config(**values)
    script_args, training_args, model_args, dataset_args = parser.parse_args_into_dataclasses(args=argv)
    if training_args.chat_template_path and training_args.chat_template_path.endswith((".jinja", ".j2")):
        # Read here rather than by trl, so that the preflight checks the template that will be trained.
        template = Path(training_args.chat_template_path).read_text(encoding="utf-8")
        training_args.chat_template_path = None
    return script_args, training_args, model_args, dataset_args, template, notes + cli_notes


def fall_back(training_args, model_args):
    """Settings that need a GPU and a package, turned off with a warning where either is missing."""
    import torch
    gpu = torch.cuda.is_available() and not training_args.use_cpu  # ROCm builds answer here too
    notes = []
    if training_args.use_liger_kernel and not (gpu and find_spec("liger_kernel")):
        training_args.use_liger_kernel = False
        notes.append("use_liger_kernel: off (" + ("no GPU" if not gpu else "liger-kernel is not installed") + ")")
    package = FLASH.get(model_args.attn_implementation)
    if package and not (gpu and find_spec(package)):
        notes.append(f"attn_implementation: {model_args.attn_implementation} -> sdpa ("
                     + ("no GPU" if not gpu else f"{package} is not installed") + ")")
        model_args.attn_implementation = "sdpa"
    return notes


# ---- data -----------------------------------------------------------------------------------------------------
def _part_number(path):
    digits = path.stem[len("data_part"):]
    return int(digits) if digits.isdigit() else 0


def load_train_dataset(script_args, dataset_args):
    import datasets
    if dataset_args.datasets:
        from trl import get_dataset
        return get_dataset(dataset_args)["train"], []
    name = script_args.dataset_name
    if not name:
        raise ConfigError("no training data: set dataset_name (a format_data/ folder, a .jsonl file or a hub id)")
    path = Path(name)
    files = [path] if path.is_file() else sorted(path.glob("data_part*.jsonl"), key=_part_number)
    notes = []
    try:
        if files:
            if script_args.dataset_train_split != "train":
                notes.append(f"dataset_train_split '{script_args.dataset_train_split}' names a split of a hub "
                             f"dataset; the files of {name} are one split, read whole")
            return datasets.load_dataset("json", data_files=[str(f) for f in files], split="train"), notes
        return datasets.load_dataset(name, name=script_args.dataset_config,
                                     split=script_args.dataset_train_split), notes
    except Exception as e:  # missing, offline, unknown split: one line for the user
        kind = "folder without data_part*.jsonl files" if path.is_dir() else "dataset"
        raise DataError(f"dataset_name {name}: cannot load this {kind} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None


def load_tokenizer(model_args, training_args, template):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_args.model_name_or_path, revision=model_args.model_revision,
                                        trust_remote_code=training_args.trust_remote_code)
    if template is not None:
        tok.chat_template = template
    if training_args.eos_token is not None:
        if training_args.eos_token not in tok.get_vocab():
            raise ConfigError(f"eos_token {training_args.eos_token!r} is not a token of the tokenizer of "
                              f"{model_args.model_name_or_path}")
        tok.eos_token = training_args.eos_token
    return tok


# ---- preflight ------------------------------------------------------------------------------------------------
def _excerpt(text, n=400):
    return text if len(text) <= 2 * n else f"{text[:n]}\n[... {len(text) - 2 * n} characters ...]\n{text[-n:]}"


def check_template(tok, dataset, training_args):
    """Render sample 0 as training will; stop if the assistant's turn does not end with the EOS token."""
    sample = dataset[0] if hasattr(dataset, "__getitem__") else next(iter(dataset))
    if "messages" not in sample:
        say("preflight: the data is not conversational ('messages'); trl appends the EOS token to its text")
        return
    kwargs = sample.get("chat_template_kwargs") or {}
    rendered = tok.apply_chat_template(sample["messages"], tokenize=False, **kwargs)
    ids = tok.apply_chat_template(sample["messages"], tokenize=True, return_dict=True, **kwargs)["input_ids"]
    eos = tok.eos_token_id
    last = max((i for i, t in enumerate(ids) if t == eos), default=None)
    ends = last is not None and not tok.decode(ids[last + 1:]).strip()
    say(f"preflight: sample 0 rendered by the chat template, {len(ids)} tokens:\n{_excerpt(rendered)}")
    say(f"preflight: ends with the EOS token {tok.eos_token!r}: {'yes' if ends else 'NO'}")
    if not ends:
        raise PreflightError(
            f"the chat template does not end the assistant's turn with the EOS token {tok.eos_token!r}, so the model "
            "would be trained never to stop; set eos_token to the token the template closes a turn with (Qwen3: "
            "<|im_end|>) or fix the template")
    if training_args.assistant_only_loss:
        from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained
        if has_generation_markers(tok.chat_template) and not is_chat_template_stop_token_trained(tok):
            raise PreflightError("assistant_only_loss: the template's {% generation %} block leaves out the EOS "
                                 "token, so the model would be trained never to stop; move it inside the block")
    if training_args.max_length and len(ids) > training_args.max_length:
        say(f"preflight: warning: sample 0 is longer than max_length {training_args.max_length} and is cut, "
            "losing its EOS token")


def count_long(dataset, max_length, packing):
    """How many prepared samples are at max_length: trl has cut them there, so they lost their EOS token."""
    import datasets
    if packing or not max_length or not isinstance(dataset, datasets.Dataset):
        return None
    import pyarrow.compute as pc
    # Lengths from the list offsets alone, no token read: seconds for millions of samples.
    lengths = pc.list_value_length(dataset.data.column("input_ids"))
    indices = getattr(dataset, "_indices", None)  # the rows trl's last filter kept, where it made a mapping
    if indices is not None:
        lengths = lengths.take(indices.column(0))
    return pc.sum(pc.greater_equal(lengths, max_length)).as_py() or 0


# ---- main -----------------------------------------------------------------------------------------------------
def prepare(argv):
    script_args, training_args, model_args, dataset_args, template, notes = parse(argv)
    notes += fall_back(training_args, model_args)
    with training_args.main_process_first(desc="loading the dataset"):
        dataset, data_notes = load_train_dataset(script_args, dataset_args)
    for note in notes + data_notes:
        say(f"warning: {note}", file=sys.stderr)
    say(f"data: {len(dataset) if hasattr(dataset, '__len__') else 'streamed'} samples from "
        f"{script_args.dataset_name or 'datasets'}")
    tok = load_tokenizer(model_args, training_args, template)
    check_template(tok, dataset, training_args)
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision, "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation, "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {})}
    return script_args, training_args, model_args, dataset, tok


def fail(e):
    if debug_enabled():  # REASONLITE_DEBUG=1: trl's parser owns --debug (a TrainingArguments field)
        import traceback
        traceback.print_exc()
    for line in str(e).splitlines() or [type(e).__name__]:
        say(f"error: {line}", file=sys.stderr)
    leave(1)


def main(argv=None):
    try:
        script_args, training_args, model_args, dataset, tok = prepare(sys.argv[1:] if argv is None else argv)
    except (ConfigError, DataError, PreflightError, ValueError, OSError) as e:
        fail(e)

    from trl import SFTTrainer, get_peft_config, get_quantization_config
    trainer = SFTTrainer(model=model_args.model_name_or_path, args=training_args, train_dataset=dataset,
                         processing_class=tok, peft_config=get_peft_config(model_args),
                         quantization_config=get_quantization_config(model_args))
    if training_args.chat_template_path:  # trl cloned a template from another model: check what it set
        try:
            check_template(trainer.processing_class, dataset, training_args)
        except PreflightError as e:
            fail(e)
    n_long = count_long(trainer.train_dataset, training_args.max_length, training_args.packing)
    if n_long is not None:
        say(f"preflight: {n_long} of {len(trainer.train_dataset)} samples reach max_length "
            f"{training_args.max_length} and are cut there, losing their EOS token")

    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        # The loss curve next to the model; save_model alone keeps none.
        trainer.state.save_to_json(os.path.join(training_args.output_dir, "trainer_state.json"))
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.accelerator.wait_for_everyone()
    say(f"model saved to {training_args.output_dir}")
    leave(0)


if __name__ == "__main__":
    main()
