"""dvc.yaml's deps are complete: every project module a stage imports, directly or not, is a dep of that stage,
so that changing it re-runs the stage (modules that cannot change a stage's outputs are named in
:data:`electra_model.code_closure.OUTPUT_NEUTRAL`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from electra_model.code_closure import ROOT, project_closure

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_imports_is_a_dep(stage: str) -> None:
    script = STAGES[stage]["cmd"].split()[1]
    deps = STAGES[stage]["deps"]
    assert covered(script, deps), f"{stage}: its own script {script} is not a dep"
    missing = sorted(path for path in project_closure(ROOT / script) if not covered(path, deps))
    assert missing == [], f"dvc.yaml stage {stage!r} lacks deps {missing}"


def test_the_closure_follows_imports_through_other_modules(tmp_path: Path) -> None:
    package = tmp_path / "electra_model"
    (package / "data").mkdir(parents=True)
    (package / "rooms").mkdir()
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("SCHEME = 'iob2'\n")  # code: importing data.b runs it first
    (package / "rooms" / "__init__.py").write_text('"""A bare package marker."""\n')  # no code: not a dep
    (package / "a.py").write_text("from electra_model.data.b import y\nimport json\n")
    (package / "data" / "b.py").write_text("from electra_model.errors import ElectraError\nimport electra_model.c\n")
    (package / "c.py").write_text("from electra_model.rooms import e\n")
    (package / "rooms" / "e.py").write_text("")
    (package / "errors.py").write_text("from electra_model import d\n")  # not followed: errors is output-neutral
    (package / "d.py").write_text("")
    script = tmp_path / "stage.py"
    script.write_text("from electra_model.a import x\n")
    assert project_closure(script, tmp_path) == {
        "electra_model/a.py", "electra_model/data/__init__.py", "electra_model/data/b.py", "electra_model/c.py",
        "electra_model/rooms/e.py",
    }


STATED_PATH_PREFIXES = ("data/", "models/", "metrics/", "plots/", "reports/", "cache/")


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_path_on_a_cmd_line_is_declared_and_no_script_restates_one(stage: str) -> None:
    """dvc.yaml is the map: the stage script reads its paths from its cmd line, and each of them is a declared
    dep, out, metric or plot (the pretraining cache, deliberately outside DVC's outputs, excepted)."""
    entry = STAGES[stage]
    declared = {*entry.get("deps", [])}
    for kind in ("outs", "metrics", "plots"):
        declared |= {next(iter(item)) if isinstance(item, dict) else item for item in entry.get(kind, [])}
    words = entry["cmd"].split()
    paths = [value for option, value in zip(words, words[1:]) if option.startswith("--") and option != "--cache"]
    assert paths and all(path in declared for path in paths), f"{stage}: {sorted(set(paths) - declared)} undeclared"
    script = ROOT / words[1]
    literals = [node.value for node in ast.walk(ast.parse(script.read_text(encoding="utf-8")))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert [text for text in literals if text.startswith(STATED_PATH_PREFIXES)] == [], f"{script} restates a path"
