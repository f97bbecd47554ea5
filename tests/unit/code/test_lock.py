"""requirements.lock is what every install takes: `make setup` (and so CI's `make test`) installs it as it is, the
Dockerfiles use it as constraints. These tests fail when pyproject.toml asks for something the lock does not pin
(run `make lock`), when torch gets into the lock (its build depends on the machine: CPU or CUDA), or when the torch
and onnxruntime-gpu versions the Makefile installs drift from the images'."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[3]
LOCK = REPO / "requirements.lock"
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))


def locked() -> dict[str, list[tuple[Version, Marker | None]]]:
    """name -> [(version, marker)]: a universal lock pins some packages twice, once per Python range."""
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for number, line in enumerate(LOCK.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith(("#", " ")):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)(?: ; (.+))?", line)
        assert match, f"requirements.lock:{number}: not `name==version [; marker]`: {line!r}"
        name, version, marker = match.groups()
        pins.setdefault(canonicalize_name(name), []).append((Version(version), Marker(marker) if marker else None))
    return pins


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["dev"]]


def make_variable(name: str) -> str:
    return re.search(rf"^{name} \?= (\S+)$", (REPO / "Makefile").read_text(encoding="utf-8"), re.M).group(1)


def docker_arg(dockerfile: str, name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)$", (REPO / "docker" / dockerfile).read_text(encoding="utf-8"), re.M).group(1)


@pytest.mark.parametrize("requirement", [r for r in project_requirements() if r.name != "torch"], ids=str)
def test_the_lock_pins_each_requirement_of_the_project_to_a_version_it_allows(requirement: Requirement) -> None:
    pins = locked().get(canonicalize_name(requirement.name))
    assert pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
    here = [version for version, marker in pins if marker is None or marker.evaluate()]
    assert len(here) == 1, f"{requirement.name}: {len(here)} pins apply to this Python, want exactly 1"
    assert requirement.specifier.contains(here[0], prereleases=True), (
        f"requirements.lock pins {requirement.name}=={here[0]}, pyproject.toml asks for {requirement}: run `make lock`")


def test_the_lock_leaves_torch_and_cuda_to_the_machine() -> None:
    cuda = [name for name in locked() if name == "torch" or name == "triton" or name.startswith("nvidia-")]
    assert cuda == []


def test_the_makefile_and_the_images_install_the_same_torch_and_onnxruntime_gpu() -> None:
    torch = make_variable("TORCH_VERSION")
    assert docker_arg("Dockerfile.cpu", "TORCH_VERSION") == torch == docker_arg("Dockerfile.gpu", "TORCH_VERSION")
    assert docker_arg("Dockerfile.gpu", "ORT_GPU_VERSION") == make_variable("ORT_GPU_VERSION")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_every_image_installs_from_the_lock(dockerfile: Path) -> None:
    text = dockerfile.read_text(encoding="utf-8")
    lock = re.search(r"^COPY requirements\.lock (\S+)$", text, re.M)
    assert lock, f"{dockerfile.name} does not copy requirements.lock"
    assert f"--constraint {lock.group(1)}" in text
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert "!requirements.lock" in ignore  # else the build context lacks it
