"""Config loading: every bad key is named with its file and line; good files fill in defaults."""
import pytest

from reasonlite import config
from reasonlite.config import ConfigError

GOOD = "model_path: m\nbase_data_path: datas/x\n"


def load_text(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return config.load(str(path))


def test_defaults_are_filled_in(tmp_path):
    cfg = load_text(tmp_path, GOOD)
    assert cfg.port_base == 8040 and cfg.max_model_len == 32768 and cfg.stop == ["<|endoftext|>", "<|return|>"]
    assert cfg.ip == ["127.0.0.1"] and cfg.host == "127.0.0.1"


def test_the_shipped_configs_load():
    for name in ("config/oss.yaml", "config/demo.yaml"):
        cfg = config.load(name)
        assert cfg.base_data_path == "datas/example"
    oss = config.load("config/oss.yaml")
    assert (oss.num_answer, oss.max_tokens, oss.temperature, oss.gpu, oss.tp) == (32, 30000, 0.8, 0.95, 1)
    assert oss.max_inflight_per_server == oss.max_num_seqs == 1024  # what a server runs at once, not the seed's 2000


def test_misspelled_key_names_line_and_suggestion(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, GOOD + "num_answers: 4\n")
    assert str(e.value) == f"{tmp_path / 'c.yaml'}:3: unknown key 'num_answers' (did you mean 'num_answer'?)"


def test_every_bad_key_is_reported_once(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "model_path: m\ntp: two\ntemprature: 1\n")
    lines = str(e.value).splitlines()
    assert len(lines) == 3
    assert "c.yaml:2: key 'tp' must be an integer, got 'two'" in lines[0]
    assert "c.yaml:3: unknown key 'temprature' (did you mean 'temperature'?)" in lines[1]
    assert "missing required key 'base_data_path'" in lines[2]


@pytest.mark.parametrize("extra, message", [
    ("tp: 3\n", "key 'tp' times dp must divide the 1 devices of gpu_index"),
    ("top_p: 0\n", "key 'top_p' must be in (0, 1]"),
    ("num_answer: 0\n", "key 'num_answer' must be at least 1"),
    ("device: tpu\n", "key 'device' must be one of auto, cuda, rocm, cpu, got 'tpu'"),
    ("gpu_index: [0, x]\n", "key 'gpu_index' must be a list of integers"),
    ("api_key_env: SURELY_NOT_SET_ANYWHERE\n", "names the environment variable SURELY_NOT_SET_ANYWHERE"),
    ("vllm_args: --enforce-eager\n", "key 'vllm_args' must be a list of strings"),
    ("sampling: adaptive\ntarget_correct: 3\n", "key 'min_correct' must be at most target_correct (3), got 4"),
    ("sampling: adaptive\nmin_correct: 0\n", "key 'min_correct' must be at least 1, got 0"),
])
def test_bad_values(tmp_path, extra, message):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, GOOD + extra)
    assert message in str(e.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, GOOD + "gpu_index: [0, 1\nmode: infer\n")
    assert "c.yaml:4: not valid YAML" in str(e.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_text(tmp_path, "- a\n- b\n")


def test_yaml_is_loaded_safely(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_text(tmp_path, GOOD + "x: !!python/object/apply:os.system ['echo pwned']\n")


def test_seed_batch_size_means_inflight_per_server(tmp_path):
    assert load_text(tmp_path, GOOD + "batch_size: 2000\n").max_inflight_per_server == 2000


def test_inflight_defaults_to_what_a_server_runs_at_once(tmp_path):
    assert load_text(tmp_path, GOOD).max_inflight_per_server == 256
    assert load_text(tmp_path, GOOD + "max_num_seqs: 128\ndp: 2\ngpu_index: [0, 1]\n").max_inflight_per_server == 256
    explicit = load_text(tmp_path, GOOD + "max_num_seqs: 128\nmax_inflight_per_server: 100\n")
    assert explicit.max_inflight_per_server == 100
