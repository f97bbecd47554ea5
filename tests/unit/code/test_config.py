"""params.yaml validation: every bad key is reported by name, with its value and what is allowed."""

from __future__ import annotations

import copy

import pytest
import yaml

from electra_model.config import load_params, parse_params
from electra_model.errors import ElectraError


@pytest.fixture(scope="module")
def raw() -> dict:
    with open("params.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def invalid(raw: dict, edit) -> str:
    changed = copy.deepcopy(raw)
    edit(changed)
    with pytest.raises(ElectraError) as error:
        parse_params(changed)
    return str(error.value)


def test_committed_params_are_valid():
    params = load_params("params.yaml")
    assert params.data.source == "demo"
    assert params.pretrain.architecture.hidden_size > 0


def test_unknown_key_is_named(raw):
    message = invalid(raw, lambda r: r["finetune"].update(learnin_rate=1e-4))
    assert "finetune.learnin_rate: unknown key" in message


def test_wrong_type_names_key_and_value(raw):
    message = invalid(raw, lambda r: r["pretrain"].update(batch_size="lots"))
    assert "pretrain.batch_size = 'lots'" in message and "integer" in message


def test_impossible_value_names_the_bound(raw):
    message = invalid(raw, lambda r: r["export"].update(min_f1=1.5))
    assert "export.min_f1 = 1.5" in message and "less than or equal to 1" in message


def test_every_problem_is_reported_at_once(raw):
    def edit(r):
        r["seed"] = -1
        r["data"]["source"] = "ftp"

    message = invalid(raw, edit)
    assert "seed = -1" in message and "data.source = 'ftp'" in message and "'demo'" in message


def test_unknown_preset_lists_the_choices(raw):
    message = invalid(raw, lambda r: r["pretrain"].update(preset="huge"))
    assert "'huge'" in message and "['base', 'small', 'tiny']" in message


def test_incomplete_local_source_names_missing_keys(raw):
    message = invalid(raw, lambda r: r["data"].update(source="local"))
    assert "data.local.corpus" in message and "data.local.ner.train" in message


def test_heads_must_divide_width(raw):
    message = invalid(raw, lambda r: r["pretrain"]["presets"]["tiny"].update(num_heads=3))
    assert "pretrain.presets.tiny" in message and "multiple of num_heads" in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\ndata:\n  source: [demo\n", encoding="utf-8")
    with pytest.raises(ElectraError, match=r"params.yaml:\d+: not valid YAML"):
        load_params(path)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ElectraError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
