"""train/ at the seed's scale, without training: which checkpoint a rerun resumes from (half-written saves
skipped), warmup read right on transformers 4.x and 5, and a GPU run that stops before loading anything when the
kernels its config asks for are missing. The run that is killed and resumed is in test_train.py (slow)."""
import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from reasonlite import sft
from reasonlite.config import ConfigError

CPU = ["--use_cpu", "true"]


# ---- resume -----------------------------------------------------------------------------------------------------
def write_checkpoint(folder, step, world=2):
    """A checkpoint-N folder with the files transformers' trainer writes, in its order (trainer_state.json last)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.zeros(64, 64)}, str(folder / "model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    for rank in range(world):
        torch.save({"cpu": torch.random.get_rng_state()}, folder / f"rng_state_{rank}.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return folder


def cut(path, keep=0.5):
    """Fault injection: leave the first part of a file, as a process killed while writing it does."""
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def setup_for(output_dir, resume=None, where=None):
    train = SimpleNamespace(output_dir=str(output_dir), resume_from_checkpoint=resume, save_only_model=False)
    return sft.Setup(None, train, None, None, where=where or {}, path="cfg.yaml")


@pytest.mark.parametrize("damage, why", [
    (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json"),
    (lambda c: cut(c / "trainer_state.json"), "trainer_state.json is cut short"),
    (lambda c: cut(c / "rng_state_1.pth"), "rng_state_1.pth is cut short"),
    (lambda c: cut(c / "model.safetensors", 0.9), "model.safetensors is cut short"),
    (lambda c: cut(c / "optimizer.pt", 0.99), "optimizer.pt is cut short"),
    (lambda c: (c / "scheduler.pt").unlink(), "no scheduler.pt"),
    (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
])
def test_a_half_written_checkpoint_is_skipped(tmp_path, damage, why):
    out = tmp_path / "out"
    for step in (2, 9, 10):
        write_checkpoint(out / f"checkpoint-{step}", step)
    damage(out / "checkpoint-10")
    path, skipped = sft.newest_checkpoint(out)
    assert path == out / "checkpoint-9"  # by step number: checkpoint-10 sorts before checkpoint-9 as text
    assert [(p.name, w.split(" (")[0]) for p, w in skipped] == [("checkpoint-10", why)]
    checkpoint, said = sft.resume_point(setup_for(out))
    assert checkpoint == str(out / "checkpoint-9")
    assert said[0].startswith(f"resume: skipped {out / 'checkpoint-10'}: {why}")
    assert said[-1].startswith(f"resume: from {out / 'checkpoint-9'} (step 9,")


def test_whole_checkpoints_are_whole(tmp_path):
    folder = write_checkpoint(tmp_path / "checkpoint-4", 4)
    assert sft.checkpoint_problem(folder) is None
    (folder / "optimizer.pt").unlink()
    assert sft.checkpoint_problem(folder) == "no optimizer.pt"
    assert sft.checkpoint_problem(folder, need_optimizer=False) is None  # save_only_model: weights and state only


def test_sharded_and_deepspeed_checkpoints(tmp_path):
    folder = write_checkpoint(tmp_path / "checkpoint-3", 3)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert sft.checkpoint_problem(folder) == "weight shard model-00002-of-00002.safetensors is missing"
    save_file({"w": torch.ones(3)}, str(folder / "model-00002-of-00002.safetensors"))
    assert sft.checkpoint_problem(folder) is None
    # ZeRO: the optimizer lives in global_stepN/, one shard per rank, named by the `latest` file
    (folder / "optimizer.pt").unlink()
    (folder / "latest").write_text("global_step3")
    assert sft.checkpoint_problem(folder) == "'latest' names global_step3, which is missing"
    (folder / "global_step3").mkdir()
    for rank in range(2):
        shard = folder / "global_step3" / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
        torch.save({"optimizer_state_dict": {}}, shard)
    assert sft.checkpoint_problem(folder) is None
    cut(folder / "global_step3" / "zero_pp_rank_1_mp_rank_00_optim_states.pt")
    assert sft.checkpoint_problem(folder) == "global_step3/zero_pp_rank_1_mp_rank_00_optim_states.pt is cut short"


def test_resume_settings(tmp_path):
    out = tmp_path / "out"
    where = {"resume_from_checkpoint": "cfg.yaml:7"}
    # nothing saved yet: a fresh start, or an error where resuming was required
    fresh = (None, [f"resume: no whole checkpoint in {out}; training from the start"])
    assert sft.resume_point(setup_for(out)) == fresh
    with pytest.raises(ConfigError) as e:
        sft.resume_point(setup_for(out, True, where))
    assert str(e.value) == (f"cfg.yaml:7: key 'resume_from_checkpoint' is true, but {out} holds no whole "
                            "checkpoint-N folder")
    write_checkpoint(out / "checkpoint-5", 5)
    write_checkpoint(out / "checkpoint-6", 6)
    for value in (None, True, "true", "True"):  # YAML gives a bool, a command line a string
        assert sft.resume_point(setup_for(out, value))[0] == str(out / "checkpoint-6")
    for value in (False, "false"):
        checkpoint, said = sft.resume_point(setup_for(out, value))
        assert checkpoint is None and "still holds checkpoint-5, checkpoint-6 of an earlier run" in said[1]
    explicit = str(out / "checkpoint-5")
    said = [f"resume: from {explicit} (resume_from_checkpoint)"]
    assert sft.resume_point(setup_for(out, explicit)) == (explicit, said)
    (out / "checkpoint-5" / "trainer_state.json").unlink()
    with pytest.raises(ConfigError) as e:
        sft.resume_point(setup_for(out, explicit, {"resume_from_checkpoint": "command line"}))
    assert str(e.value).startswith(f"command line: key 'resume_from_checkpoint' names {explicit}, which cannot be "
                                   "resumed from: no trainer_state.json")


def test_resume_key_from_config_and_command_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model_name_or_path: m\noutput_dir: {tmp_path / 'out'}\nresume_from_checkpoint: false\n")
    setup = sft.parse(["--config", str(cfg), *CPU])
    assert setup.train.resume_from_checkpoint is False and setup.at("resume_from_checkpoint") == f"{cfg}:3"
    setup = sft.parse(["--config", str(cfg), *CPU, "--resume_from_checkpoint", "true"])
    assert setup.at("resume_from_checkpoint") == "command line"
    with pytest.raises(ConfigError, match="^command line: key 'resume_from_checkpoint' is true"):
        sft.resume_point(setup)


# ---- warmup -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", [["warmup_ratio: 0.1"], ["warmup_steps: 0.1"], []])
def test_warmup_both_spellings_on_the_installed_transformers(tmp_path, spelling):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("\n".join(["model_name_or_path: m", *spelling]) + "\n")
    args = [] if spelling else ["--warmup_ratio", "0.1"]  # the seed's key on a command line too
    setup = sft.parse(["--config", str(cfg), *CPU, *args])
    assert setup.train.get_warmup_steps(100) == 10  # 10% of 100 steps, whichever spelling and version


def test_warmup_style_is_read_from_the_fields():
    def args_class(**fields):
        return dataclasses.make_dataclass("TrainingArguments", [(k, t, dataclasses.field(default=0))
                                                                for k, t in fields.items()])
    assert sft.warmup_style(args_class(warmup_steps=int, warmup_ratio=float)) == "ratio"  # transformers 4.x
    assert sft.warmup_style(args_class(warmup_steps=float, warmup_ratio=float)) == "steps"  # 5.0, 5.1
    assert sft.warmup_style(args_class(warmup_steps=float)) == "steps"  # 5.2 on
    assert sft.warmup_style(args_class(warmup_steps="int", warmup_ratio="float")) == "ratio"  # postponed annotations
    assert sft.warmup_style(args_class(warmup_steps="float")) == "steps"


@pytest.mark.parametrize("style, raw, expected, noted", [
    # transformers 4.x: warmup_ratio is the ratio; a fractional warmup_steps would be no warmup at all
    ("ratio", {"warmup_ratio": 0.03}, {"warmup_ratio": 0.03}, False),
    ("ratio", {"warmup_steps": 0.03}, {"warmup_ratio": 0.03}, True),
    ("ratio", {"warmup_steps": 50}, {"warmup_steps": 50}, False),
    # transformers 5: a warmup_steps below 1 is the ratio; warmup_ratio is gone (5.2) or deprecated (5.0, 5.1)
    ("steps", {"warmup_ratio": 0.03}, {"warmup_steps": 0.03}, True),
    ("steps", {"warmup_steps": 0.03}, {"warmup_steps": 0.03}, False),
    ("steps", {"warmup_steps": 50}, {"warmup_steps": 50}, False),
])
def test_warmup_translation_for_each_version(style, raw, expected, noted):
    known = {"warmup_steps"} | ({"warmup_ratio"} if style == "ratio" else set())
    values, _, notes, _ = sft.translate(raw, known, "c.yaml", {k: 4 for k in raw}, style=style)
    assert values == expected
    assert bool(notes) == noted and all(n.startswith("c.yaml:4: ") for n in notes)
    (key, value), = raw.items()
    args, cli_notes, _, given = sft.translate_cli([f"--{key}", str(value), "--max_steps", "3"], style)
    (new_key, new_value), = expected.items()
    assert args == [f"--{new_key}", str(new_value), "--max_steps", "3"] and given == {new_key, "max_steps"}
    assert bool(cli_notes) == noted


def test_warmup_errors_name_their_line():
    with pytest.raises(ConfigError) as e:
        sft.translate({"warmup_ratio": 1.5}, {"warmup_steps"}, "c.yaml", {"warmup_ratio": 2})
    assert str(e.value) == "c.yaml:2: key 'warmup_ratio' must be a number in [0, 1), got 1.5"


# ---- kernels ----------------------------------------------------------------------------------------------------
def test_kernel_plan_with_gpu_and_packages_given():
    none, every = (lambda package: False), (lambda package: True)
    flash = "pip install flash-attn --no-build-isolation"
    assert sft.kernel_plan("flash_attention_2", True, gpu=True, installed=every, fallback=False) == []
    assert sft.kernel_plan("sdpa", False, gpu=True, installed=none, fallback=False) == []
    assert sft.kernel_plan("flash_attention_2", True, gpu=True, installed=none, fallback=False) == [
        ("attn_implementation", None, "flash_attn is not installed", flash),
        ("use_liger_kernel", None, "liger_kernel is not installed", "pip install liger-kernel")]
    fa3 = sft.kernel_plan("flash_attention_3", False, gpu=True, installed=lambda p: p == "flash_attn", fallback=False)
    assert fa3[0][:3] == ("attn_implementation", None, "flash_attn_interface is not installed")
    assert sft.kernel_plan("flash_attention_2", False, gpu=True, installed=none, fallback=True) == [
        ("attn_implementation", "sdpa", "flash_attn is not installed; kernel_fallback: true", flash)]
    # no GPU: dropped with a warning whatever is installed (the CPU path)
    assert [p[:3] for p in sft.kernel_plan("flash_attention_2", True, gpu=False, installed=every, fallback=False)] == [
        ("attn_implementation", "sdpa", "no GPU"), ("use_liger_kernel", False, "no GPU")]
    rocm = sft.kernel_plan("flash_attention_2", False, gpu=True, installed=none, fallback=False, rocm=True)
    assert "ROCm/flash-attention" in rocm[0][3]


def test_a_gpu_without_flash_attn_stops_before_loading(monkeypatch):
    # Fault injection: this machine has no GPU; torch is told it has one, and nothing may be loaded.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sft, "load_train_dataset", lambda *a: pytest.fail("the dataset was loaded"))
    monkeypatch.setattr(sft, "find_spec", lambda name: None)
    monkeypatch.setattr(sft, "parse", lambda argv, parse=sft.parse: _on_gpu(parse(argv)))
    with pytest.raises(ConfigError) as e:
        sft.prepare(["--config", "train/config_stage1.yaml", *CPU])
    assert str(e.value).splitlines() == [
        "train/config_stage1.yaml:10: key 'attn_implementation' is flash_attention_2, but on this GPU machine "
        "flash_attn is not installed: pip install flash-attn --no-build-isolation (or set kernel_fallback: true to "
        "train without it, with far more memory per sequence)",
        "train/config_stage1.yaml:143: key 'use_liger_kernel' is true, but on this GPU machine liger_kernel is not "
        "installed: pip install liger-kernel (or set kernel_fallback: true to train without it, with far more "
        "memory per sequence)"]
    setup = _on_gpu(sft.parse(["--config", "train/config_stage1.yaml", *CPU, "--kernel_fallback", "true"]))
    assert sft.check_kernels(setup) == [
        "train/config_stage1.yaml:10: attn_implementation flash_attention_2 -> sdpa (flash_attn is not installed; "
        "kernel_fallback: true)",
        "train/config_stage1.yaml:143: use_liger_kernel true -> false (liger_kernel is not installed; "
        "kernel_fallback: true)"]
    assert setup.model.attn_implementation == "sdpa" and setup.train.use_liger_kernel is False


def _on_gpu(setup):
    setup.train.use_cpu = False  # parsed with use_cpu so that bf16 passes transformers' checks on this CPU machine
    return setup


def test_kernel_fallback_must_be_a_bool(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: m\nkernel_fallback: sdpa\n")
    with pytest.raises(ConfigError, match=r"c.yaml:2: key 'kernel_fallback' must be true or false, got 'sdpa'$"):
        sft.parse(["--config", str(cfg), *CPU])
    with pytest.raises(ConfigError, match=r"^command line: key 'kernel_fallback' must be true or false, got 'x'$"):
        sft.parse(["--model_name_or_path", "m", *CPU, "--kernel_fallback", "x"])
