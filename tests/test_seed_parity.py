"""The seed's data-side behaviours that differ from the obvious: new_data_name, and an info.jsonl index that names
one answer. Against bench/stub_server.py answering by itself (no model needed for these)."""
import json

import pytest
from conftest import read_folder, run_script, stub, write_info, write_yaml

from reasonlite.generation import one_answer


@pytest.mark.parametrize("index, j", [("pol:0_3", 3), ("pol:0", None), ("open_math:12", None), ("a_b_3", None),
                                      ("7_0", 0), ("pol:0_", None)])
def test_one_answer_follows_the_seeds_single_underscore_rule(index, j):
    assert one_answer(index) == j


@pytest.mark.slow
def test_new_data_name_and_single_answer_indices(tmp_path):
    base = write_info(tmp_path / "exp", [("pol:0", "What is 1 + 1?", "2"), ("pol:1_5", "What is 2 + 2?", "4")])
    with stub() as port:
        cfg = write_yaml(tmp_path / "c.yaml", {
            "model_path": "stub/gpt-oss-stub", "prompt_format": "harmony", "port_base": port, "device": "cpu",
            "base_data_path": str(base), "num_answer": 3, "new_data_name": "answer_origin_high"})
        proc = run_script("infer.py", "-c", cfg, "-m", "infer", "-s", "r")
        assert proc.returncode == 0, proc.stderr
    assert not (base / "answer_origin").exists()
    records = read_folder(base / "answer_origin_high" / "r")
    # pol:0 gets num_answer answers; pol:1_5 is answer 5 of pol:1 alone, requested with seed 5
    assert sorted(r["index"] for r in records) == ["pol:0_0", "pol:0_1", "pol:0_2", "pol:1_5"]


def test_new_data_name_is_a_folder_name(tmp_path):
    from reasonlite import config
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"model_path": "m", "base_data_path": "x", "new_data_name": "../elsewhere"}))
    with pytest.raises(config.ConfigError, match="key 'new_data_name' is a folder name"):
        config.load(str(path))
