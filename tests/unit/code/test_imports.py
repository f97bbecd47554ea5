"""What importing the library pulls in: never prefect or dvc (flows call the library through `dvc repro`, not the
other way round), nor scikit-learn or seqeval, which cost every stage about a second of start-up (the functions
that need scikit-learn import it; tasks/ner/metrics.py says why), and for the modules the light client ships, not
torch either. Each check imports in a fresh
interpreter, since this test process has long imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

from electra_model.code_closure import PACKAGE, ROOT, project_closure


def client_modules() -> list[str]:
    """Every module the light client wheel ships, read from client/pyproject.toml's packaging (its packages'
    modules, found on disk, and its single modules), so this test cannot drift from what users install."""
    packaging = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    modules = list(packaging["py-modules"])
    for package in packaging["packages"]:
        folder = ROOT.joinpath(*package.split("."))
        modules += [f"{package}.{path.stem}".removesuffix(".__init__") for path in sorted(folder.glob("*.py"))]
    return modules


def loaded_after_importing(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """The top-level names among ``watched`` that are in ``sys.modules`` after importing ``modules``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(watched)!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def library_modules() -> list[str]:
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / PACKAGE).rglob("*.py")
    )


def test_no_library_module_loads_prefect_dvc_or_scikit_learn() -> None:
    modules = library_modules()
    assert "electra_model.serving.pyfunc" in modules and "electra_model.cli" in modules
    assert loaded_after_importing(modules, ("prefect", "dvc", "sklearn", "seqeval")) == []


def test_the_client_modules_load_neither_torch_nor_the_pipeline_tools() -> None:
    modules = client_modules()
    assert {"electra_model.client.loader", "electra_model.client.store", "electra_model.errors"} <= set(modules)
    assert loaded_after_importing(modules, ("torch", "transformers", "prefect", "dvc", "mlflow")) == []


def test_the_client_package_ships_every_project_module_its_modules_import() -> None:
    """A project module the client imports from outside its folder would make the wheel fail at import on a
    user's machine, not here."""
    shipped = {
        (f"{name}.__init__" if (ROOT.joinpath(*name.split(".")) / "__init__.py").is_file() else name).replace(".", "/")
        + ".py"
        for name in client_modules()
    }
    missing = {path for module in shipped for path in project_closure(ROOT / module) if path not in shipped}
    assert missing == set()
