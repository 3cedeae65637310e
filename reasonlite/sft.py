"""Supervised fine-tuning of the student on format_data/ with trl's SFTTrainer, from an open-r1-style YAML config.

    bash train/stage1.sh <machine_rank> <main_process_ip>     # accelerate launch of this script on 4 nodes x 8 GPUs
    accelerate launch --config_file train/accelerate/zero1.yaml train/sft.py --config train/config_stage1.yaml
    python3 train/sft.py --config train/config_tiny.yaml --max_steps 5 --output_dir runs/train/try   # one process

Any key of the config may be overridden on the command line (`--key value`, trl's parser). The seed's configs are
read as written: keys that the installed trl/transformers renamed or dropped (torch_dtype, dataset_split,
warmup_ratio or a fractional warmup_steps, overwrite_output_dir, an inline chat_template) are translated with a
warning, and a key no one knows is an error naming its line. `dataset_name` is a hub id, a folder of
`data_part*.jsonl` (what saving_to_training_format.py writes) or one .jsonl file.

Before anything is loaded: the kernels the config asks for (flash-attn, liger-kernel) must be installed on a GPU
machine, or `kernel_fallback: true` trains without them (on a CPU they are always dropped, with a warning); and the
run resumes from the newest whole `checkpoint-N` in output_dir (as open-r1 does), skipping one whose save was cut
short, unless `resume_from_checkpoint: false` (or a path) says otherwise. Before training, a preflight renders one
sample through the student's chat template and stops if the template would train the model never to stop.
"""
import dataclasses
import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from reasonlite.cli import debug_enabled
from reasonlite.config import ConfigError, Field, check_fields, from_text, key_lines, unknown_key
from reasonlite.jsonl import DataError

# Keys of the seed's configs that current trl/transformers renamed: the new name, and why.
RENAMED = {
    "torch_dtype": ("dtype", "transformers 5 renamed it"),
    "dataset_split": ("dataset_train_split", "trl's name for it"),
}
DROPPED = {"overwrite_output_dir": "the run resumes from output_dir's newest whole checkpoint whatever its value, as "
                                   "open-r1 does; resume_from_checkpoint: false starts over"}
# Keys of this trainer, not trl's: read here and taken out before trl's parser sees them.
OURS = {"kernel_fallback": Field("bool", False)}
# Kernels a config may ask for, the package each needs on a GPU machine, and how to install it.
FLASH = {
    "flash_attention_2": ("flash_attn", "pip install flash-attn --no-build-isolation"),
    "flash_attention_3": ("flash_attn_interface",
                          "cd hopper && python setup.py install in a clone of github.com/Dao-AILab/flash-attention"),
}
LIGER = ("liger_kernel", "pip install liger-kernel")


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
@dataclass
class Setup:
    """What the config and command line ask for, and where each key was set (for errors that name the line)."""
    script: Any
    train: Any
    model: Any
    data: Any
    template: str | None = None
    notes: list = field(default_factory=list)
    where: dict = field(default_factory=dict)  # key -> "file:line" or "command line"
    path: str = "<config>"
    kernel_fallback: bool = False

    def at(self, key):
        return self.where.get(key, self.path)


def make_parser():
    from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig, TrlParser
    return TrlParser((ScriptArguments, SFTConfig, ModelConfig, DatasetMixtureConfig))


def warmup_style(args_class=None):
    """How the installed transformers takes a warmup given as a share of the steps.

    'steps' where `warmup_steps` is a float field and a value below 1 is that share (transformers 5; 5.2 dropped
    warmup_ratio), 'ratio' where it is an int field beside `warmup_ratio` (transformers 4.x, where a warmup_steps
    of 0.03 is a fraction of one step: no warmup at all). Read from the fields, not the version number.
    """
    if args_class is None:
        from transformers import TrainingArguments as args_class
    fields = {f.name: f for f in dataclasses.fields(args_class)}
    steps_type = fields["warmup_steps"].type
    if "float" in (steps_type if isinstance(steps_type, str) else repr(steps_type)):
        return "steps"
    return "ratio" if "warmup_ratio" in fields else "steps"


def translate_warmup(key, value, raw, where, style):
    """(trl key, value, note or None, error or None) for warmup_ratio / warmup_steps as the installed version reads."""
    if key == "warmup_ratio":
        if "warmup_steps" in raw:
            return None, None, None, f"{where}: both 'warmup_ratio' and 'warmup_steps' are set; keep one"
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
            return None, None, None, f"{where}: key 'warmup_ratio' must be a number in [0, 1), got {value!r}"
        if style == "ratio":
            return "warmup_ratio", value, None, None
        return "warmup_steps", value, (f"{where}: 'warmup_ratio' is now 'warmup_steps' (transformers 5 dropped "
                                       "warmup_ratio; a warmup_steps below 1 is that ratio); translated"), None
    if style == "ratio" and isinstance(value, float) and 0 < value < 1:
        return "warmup_ratio", value, (f"{where}: 'warmup_steps' {value} is a ratio on transformers 5 but a fraction "
                                       "of one step (no warmup) on this transformers 4.x; translated to "
                                       "'warmup_ratio'"), None
    return "warmup_steps", value, None, None


def translate(raw, known, path, lines=None, style="steps"):
    """The seed's keys as trl's parser takes them: (values, inline chat template or None, warnings, our keys).

    Raises ConfigError listing every key that is neither known nor a known rename, one per line.
    """
    lines = lines or {}
    values, notes, errors, ours = {}, [], [], {}
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
        elif key in ("warmup_ratio", "warmup_steps"):
            new, new_value, note, error = translate_warmup(key, value, raw, where, style)
            errors += [error] if error else []
            notes += [note] if note else []
            if new:
                values[new] = new_value
        elif key in OURS:
            errors += check_fields({key: value}, OURS, lambda _, where=where: where, required=False)
            ours[key] = value
        elif key in RENAMED:
            new, why = RENAMED[key]
            if new in raw:
                errors.append(f"{where}: both '{key}' and its new name '{new}' are set; keep '{new}'")
            else:
                values[new] = value
                notes.append(f"{where}: '{key}' is now '{new}' ({why}); translated")
        elif key in DROPPED:
            notes.append(f"{where}: '{key}' ignored ({DROPPED[key]})")
        elif key in known:
            values[key] = value
        else:
            errors.append(unknown_key(where, key, known | set(RENAMED) | set(OURS) | {"warmup_ratio"}))
    if errors:
        raise ConfigError("\n".join(errors))
    return values, template, notes, ours


def translate_cli(args, style="steps"):
    """(trl's arguments, warnings, our keys, keys given) from a command line: renamed keys get their new names, a
    warmup its installed spelling, and our own keys (`--kernel_fallback true`) are taken out."""
    out, notes, ours, given = [], [], {}, set()
    args, i = list(args), 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        i += 1
        if not name.startswith("--"):
            out.append(args[i - 1])
            continue
        key = name[2:]
        if not eq and i < len(args) and not args[i].startswith("--"):  # `--key value`, not a bare `--flag`
            value, eq, i = args[i], "=", i + 1
        if key in OURS:
            ours[key] = from_text(key, OURS[key], value if eq else "true")  # a bare --kernel_fallback: true
        elif key in RENAMED:
            notes.append(f"command line: '--{key}' is now '--{RENAMED[key][0]}'; translated")
            key = RENAMED[key][0]
        elif key in ("warmup_ratio", "warmup_steps") and eq:
            try:
                number = float(value)
            except ValueError:
                number = value
            key, _, note, error = translate_warmup(key, number, {}, "command line", style)
            if error:
                raise ConfigError(error)
            notes += [note] if note else []
        given.add(key)
        if key not in OURS:
            out += [f"--{key}", value] if eq else [f"--{key}"]
    return out, notes, ours, given


def parse(argv):
    """A Setup from --config and the flags after it."""
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
    style = warmup_style()
    values, template, notes, ours = translate(raw, known, path or "<config>", lines, style)
    argv, cli_notes, cli_ours, given = translate_cli(argv, style)
    parser.set_defaults_with_config(**values)
    script_args, training_args, model_args, dataset_args = parser.parse_args_into_dataclasses(args=argv)
    if training_args.chat_template_path and training_args.chat_template_path.endswith((".jinja", ".j2")):
        # Read here rather than by trl, so that the preflight checks the template that will be trained.
        template = Path(training_args.chat_template_path).read_text(encoding="utf-8")
        training_args.chat_template_path = None
    where = {key: f"{path}:{line}" for key, line in lines.items()}
    where.update({RENAMED.get(key, (key,))[0]: where[key] for key in raw if key in RENAMED and key in where})
    where.update({key: "command line" for key in given})
    ours = {**{k: f.default for k, f in OURS.items()}, **ours, **cli_ours}
    return Setup(script_args, training_args, model_args, dataset_args, template, notes + cli_notes, where,
                 path or "<config>", ours["kernel_fallback"])


# ---- kernels --------------------------------------------------------------------------------------------------
def kernel_plan(attn, liger, gpu, installed, fallback, rocm=False):
    """[(key, new value or None to stop, reason, install line)] for the kernels a config asks for.

    Pure, so that a test can say whether there is a GPU and which packages are installed. On a CPU the kernels are
    dropped (today's CPU path); on a GPU a missing one stops the run unless `fallback`: sdpa in place of
    flash-attn holds the whole attention matrix per head, and the seed's 8-16 sequences of 32K tokens per device
    run out of memory an hour in instead of failing now.
    """
    plan = []
    asked = []
    if attn in FLASH:
        asked.append(("attn_implementation", "sdpa", *FLASH[attn]))
    if liger:
        asked.append(("use_liger_kernel", False, *LIGER))
    for key, instead, package, install in asked:
        if gpu and installed(package):
            continue
        if rocm and package == "flash_attn":
            install += " (ROCm: the build of https://github.com/ROCm/flash-attention)"
        if not gpu:
            plan.append((key, instead, "no GPU", install))
        elif fallback:
            plan.append((key, instead, f"{package} is not installed; kernel_fallback: true", install))
        else:
            plan.append((key, None, f"{package} is not installed", install))
    return plan


def check_kernels(setup):
    """Apply kernel_plan to the parsed config: warnings for what falls back, a ConfigError for what stops."""
    import torch
    train, model = setup.train, setup.model
    gpu = torch.cuda.is_available() and not train.use_cpu  # ROCm builds answer here too
    plan = kernel_plan(model.attn_implementation, train.use_liger_kernel, gpu, lambda p: find_spec(p) is not None,
                       setup.kernel_fallback, rocm=bool(getattr(torch.version, "hip", None)))
    notes, errors = [], []
    for key, instead, why, install in plan:
        value = model.attn_implementation if key == "attn_implementation" else "true"
        if instead is None:
            errors.append(f"{setup.at(key)}: key '{key}' is {value}, but on this GPU machine {why}: {install} (or "
                          "set kernel_fallback: true to train without it, with far more memory per sequence)")
            continue
        notes.append(f"{setup.at(key)}: {key} {value} -> {str(instead).lower()} ({why})")
        setattr(model if key == "attn_implementation" else train, key, instead)
    if errors:
        raise ConfigError("\n".join(errors))
    return notes


# ---- resume ---------------------------------------------------------------------------------------------------
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def _safetensors_whole(path):
    """A safetensors file holds its header's length, the header, then the data the header's offsets span."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or 8 + int.from_bytes(head, "little") > size:
            return False
        n = int.from_bytes(head, "little")
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    return size >= 8 + n + max(ends, default=0)


def checkpoint_problem(folder, need_optimizer=True):
    """Why a checkpoint-N folder cannot be resumed from, or None when it is whole.

    The trainer (transformers 4.x and 5 alike) saves the weights, then the optimizer and scheduler, then each
    process's RNG state, and writes trainer_state.json last, from process 0 only. So a folder without a readable
    trainer_state.json was cut short. Other processes' files (rng_state_<rank>.pth; DeepSpeed's shards, whose
    save_checkpoint ends in a barrier) are not ordered before it, so every torch and safetensors file is also
    checked to be whole: torch.save writes a zip archive whose directory comes last.
    """
    folder = Path(folder)
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        int(state["global_step"])
    except FileNotFoundError:
        return "no trainer_state.json (the trainer writes it last: the save was cut short)"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "trainer_state.json is cut short"
    names = {p.name for p in folder.iterdir()}
    deepspeed = None
    if "latest" in names:  # DeepSpeed's tag file, written once its own save is done
        deepspeed = (folder / "latest").read_text(encoding="utf-8").strip()
        if not deepspeed or not (folder / deepspeed).is_dir():
            return f"'latest' names {deepspeed or 'nothing'}, which is missing"
    for index in INDEXES:
        if index in names:
            try:
                shards = set(json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values())
            except (ValueError, KeyError, AttributeError):
                return f"{index} is cut short"
            missing = sorted(shards - names)
            if missing:
                return f"weight shard {missing[0]} is missing"
    fsdp = any(n.startswith("pytorch_model_fsdp") for n in names)
    if not (names & set(WEIGHTS + INDEXES) or deepspeed or fsdp):
        return "no model weights"
    if need_optimizer and not deepspeed:
        if not (names & {"optimizer.pt", "optimizer.bin"} or any(n.startswith("optimizer_") for n in names)):
            return "no optimizer.pt"
        if "scheduler.pt" not in names:
            return "no scheduler.pt"
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".safetensors" and not _safetensors_whole(path):
            return f"{path.relative_to(folder)} is cut short"
        if path.suffix in (".pt", ".pth", ".bin") and path.is_file() and not zipfile.is_zipfile(path):
            return f"{path.relative_to(folder)} is cut short"
    return None


def newest_checkpoint(output_dir, need_optimizer=True):
    """(the newest whole checkpoint-N folder of output_dir or None, [(newer folder skipped, why)])."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None, []
    found = sorted(((int(m.group(1)), p) for p in output_dir.iterdir()
                    if (m := CHECKPOINT.match(p.name)) and p.is_dir()), reverse=True)
    skipped = []
    for _, path in found:
        why = checkpoint_problem(path, need_optimizer)
        if why is None:
            return path, skipped
        skipped.append((path, why))
    return None, skipped


def resume_value(value):
    """'auto' (unset), True, False or a path, from YAML (a bool) or a command line (a string)."""
    if value is None or value is True or value is False:
        return "auto" if value is None else value
    text = str(value).strip()
    return {"true": True, "false": False, "auto": "auto", "": "auto"}.get(text.lower(), text)


def resume_point(setup):
    """(the checkpoint to resume from or None, lines to say): open-r1's rule, with half-written saves skipped.

    Unset: the newest whole checkpoint in output_dir, or a fresh start where there is none. `true`: the same, but
    an error where there is none (as transformers). `false`: a fresh start. A path: that checkpoint, which must be
    whole.
    """
    train = setup.train
    value = resume_value(train.resume_from_checkpoint)
    where = setup.at("resume_from_checkpoint")
    need_optimizer = not train.save_only_model
    if value is False:
        said = ["resume: off (resume_from_checkpoint: false); training from the start"]
        old = sorted((p.name for p in Path(train.output_dir).glob("checkpoint-*") if CHECKPOINT.match(p.name)),
                     key=lambda name: int(name.split("-")[1]))
        if old:  # a later resume picks the highest step, which may be one of these rather than this run's
            said.append(f"resume: warning: {train.output_dir} still holds {', '.join(old)} of an earlier run; a "
                        "later resume would pick the highest step among them and this run's: move them away")
        return None, said
    if value not in ("auto", True):
        why = checkpoint_problem(value, need_optimizer) if Path(value).is_dir() else "no such folder"
        if why:
            raise ConfigError(f"{where}: key 'resume_from_checkpoint' names {value}, which cannot be resumed from: "
                              f"{why}")
        return str(value), [f"resume: from {value} (resume_from_checkpoint)"]
    path, skipped = newest_checkpoint(train.output_dir, need_optimizer)
    said = [f"resume: skipped {p}: {why}" for p, why in skipped]
    if path is None:
        if value is True:
            raise ConfigError(f"{where}: key 'resume_from_checkpoint' is true, but {train.output_dir} holds no whole "
                              "checkpoint-N folder")
        return None, said + [f"resume: no whole checkpoint in {train.output_dir}; training from the start"]
    step = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))["global_step"]
    return str(path), said + [f"resume: from {path} (step {step}, the newest whole checkpoint in "
                              f"{train.output_dir}; resume_from_checkpoint: false starts over)"]


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
    setup = parse(argv)
    training_args, model_args = setup.train, setup.model
    notes = setup.notes + check_kernels(setup)  # before anything is loaded: a missing kernel stops the run now
    checkpoint, resume_lines = resume_point(setup)
    training_args.resume_from_checkpoint = checkpoint
    with training_args.main_process_first(desc="loading the dataset"):
        dataset, data_notes = load_train_dataset(setup.script, setup.data)
    for note in notes + data_notes:
        say(f"warning: {note}", file=sys.stderr)
    for line in resume_lines:
        say(line)
    say(f"data: {len(dataset) if hasattr(dataset, '__len__') else 'streamed'} samples from "
        f"{setup.script.dataset_name or 'datasets'}")
    tok = load_tokenizer(model_args, training_args, setup.template)
    check_template(tok, dataset, training_args)
    training_args.model_init_kwargs = {
        "revision": model_args.model_revision, "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation, "dtype": model_args.dtype,
        **(training_args.model_init_kwargs or {})}
    return setup.script, training_args, model_args, dataset, tok


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
        # The loss curve next to the model; save_model alone keeps none. After a resume it holds the whole curve:
        # the trainer reloads the checkpoint's log_history and appends to it.
        trainer.state.save_to_json(os.path.join(training_args.output_dir, "trainer_state.json"))
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.accelerator.wait_for_everyone()
    say(f"model saved to {training_args.output_dir}")
    leave(0)


if __name__ == "__main__":
    main()
