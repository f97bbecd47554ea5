"""params.yaml validation: every bad key is reported by name, with its value and what is allowed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from electra_model.config import Params, leaf_types, load_params, parse_params, stage_params
from electra_model.errors import ElectraError

REPO = Path(__file__).resolve().parents[3]


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
    assert "'huge'" in message and "['base', 'small', 'tiny', 'tiny_cpu_hour']" in message


def test_incomplete_local_source_names_missing_keys(raw):
    message = invalid(raw, lambda r: r["data"].update(source="local"))
    assert "data.local.corpus" in message and "ner.local.train" in message


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


@pytest.mark.parametrize("key", ["seed", "tune.seed"])
def test_a_seed_numpy_cannot_take_is_refused_by_key(tmp_path, key):
    with pytest.raises(ElectraError, match=rf"^\S+params.yaml: invalid param {key} = 4294967296: .*4294967295$"):
        load_params(REPO / "params.yaml", {key: 2**32})
    assert load_params(REPO / "params.yaml", {key: 2**32 - 1})


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_file_is_named_before_dvc_interpolates_it(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ElectraError, match=rf"^{path}: the file is empty .*git checkout params.yaml"):
        load_params(path)


@pytest.mark.parametrize(("line", "column"), [("\u00a0 c: 2", 1), ("c:\u00a03", 3), ("c: 3\u200b", 5)])
def test_an_odd_space_is_named_at_its_own_line_and_column(tmp_path, line, column):
    path = tmp_path / "params.yaml"
    path.write_text(f"a: 1\nb:\n{line}\n# a comment may hold one:\u00a0x\n", encoding="utf-8")
    with pytest.raises(ElectraError, match=rf"^{path}:3:{column}: a .* \(U\+[0-9A-F]{{4}}\) where YAML needs a plain"):
        load_params(path)


@pytest.mark.parametrize("uri", ["http://bob:pw-123@mlflow.example.com", "postgresql://bob:pw-123@db:5432/mlflow"])
def test_a_tracking_uri_with_credentials_is_refused_masked(raw, uri):
    message = invalid(raw, lambda r: r["tracking"].update(uri=uri))
    assert "tracking.uri: " in message and "***@" in message and "MLFLOW_TRACKING_PASSWORD" in message
    assert "pw-123" not in message and "bob" not in message


# ------------------------------------------------------------------------------------ non-finite and boolean
def numeric_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every int or float key of the params, found by walking the models (a preset stands for all presets)."""
    for name, field in model.model_fields.items():
        types = leaf_types(field.annotation)
        if types & {int, float} and bool not in types:
            yield (*prefix, name)
        for kind in types:
            args = getattr(kind, "__args__", ())
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from numeric_keys(kind, (*prefix, name))
            elif len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):  # dict[str, Model]
                yield from numeric_keys(args[1], (*prefix, name, "tiny"))


NUMERIC_KEYS = sorted(set(numeric_keys(Params)))


def test_the_walk_finds_the_numeric_keys_of_every_section():
    dotted = {".".join(key) for key in NUMERIC_KEYS}
    assert {"seed", "finetune.epochs", "finetune.learning_rate", "pretrain.presets.tiny.generator_fraction",
            "data.hf.max_corpus_lines", "tracking.connect_timeout_s", "export.max_f1_drop"} <= dotted
    assert len(dotted) > 40


def set_key(raw: dict, key: tuple[str, ...], value: object) -> None:
    section = raw
    for part in key[:-1]:
        if not isinstance(section.get(part), dict):
            section[part] = {}
        section = section[part]
    section[key[-1]] = value


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "-inf", "nan", True, False])
def test_every_numeric_key_refuses_non_finite_values_and_booleans(raw, value):
    for key in NUMERIC_KEYS:
        message = invalid(raw, lambda r, key=key: set_key(r, key, value))
        assert f"{'.'.join(key)} = {value!r}: " in message, (key, message)
        allowed = ("not a number here",) if isinstance(value, bool) else ("finite number", "valid integer")
        assert any(reason in message for reason in allowed), (key, message)


def test_yaml_infinity_and_nan_are_refused_by_key(tmp_path):
    text = open("params.yaml", encoding="utf-8").read()
    text = text.replace("  learning_rate: 3.0e-4", "  learning_rate: .inf").replace("  epochs: 8", "  epochs: .nan")
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ElectraError) as error:
        load_params(path)
    assert "finetune.learning_rate = inf: Input should be a finite number" in str(error.value)
    assert "finetune.epochs = nan" in str(error.value)


def test_true_for_epochs_is_not_one(raw):
    message = invalid(raw, lambda r: r["finetune"].update(epochs=True))
    assert "finetune.epochs = True: Value error, true/false is not a number here" in message


def test_booleans_stay_valid_where_a_boolean_is_meant(raw):
    changed = copy.deepcopy(raw)
    changed["finetune"]["document_context"] = True
    changed["tokenizer"]["lowercase"] = True
    params = parse_params(changed)
    assert params.finetune.document_context is True and params.tokenizer.lowercase is True


def test_a_stage_logs_exactly_the_params_dvc_yaml_gives_it() -> None:
    params = load_params(REPO / "params.yaml")
    logged = stage_params(params, "export", REPO / "dvc.yaml")
    assert logged == {"plugins": [], "export": params.export.model_dump(), "evaluate.split": params.evaluate.split,
                      "evaluate.batch_size": params.evaluate.batch_size, "finetune.max_seq_len": 128}
    with pytest.raises(ElectraError, match="no stage 'exprot'"):
        stage_params(params, "exprot", REPO / "dvc.yaml")
