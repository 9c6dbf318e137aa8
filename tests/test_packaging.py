"""The install fits beside its users' versions: ranges in pyproject.toml, pins in CI only.

CI runs the tests at both ends of each range (`.ci/constraints-lowest.txt` and
`.ci/constraints.txt`); these tests keep those files and the ranges saying the same.
"""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def runtime_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {requirement.name.lower(): requirement for requirement in requirements}


def pins(name: str) -> dict[str, Version]:
    pinned = {}
    for line in (ROOT / ".ci" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pinned[requirement.name.lower()] = Version(specifier.version)
    return pinned


def lower_bound(requirement: Requirement) -> Version:
    (bound,) = [spec for spec in requirement.specifier if spec.operator == ">="]
    return Version(bound.version)


def test_every_runtime_dependency_is_a_range_below_the_next_major() -> None:
    """From a tested lower bound to the major after the newest version CI tests."""
    newest = pins("constraints.txt")
    for name, requirement in runtime_requirements().items():
        operators = sorted(spec.operator for spec in requirement.specifier)
        assert operators == ["<", ">="], f"{name}: {requirement.specifier}"
        (upper,) = [spec for spec in requirement.specifier if spec.operator == "<"]
        tested = newest[name]
        next_major = Version(f"{tested.major + 1}") if tested.major else Version("1")
        assert Version(upper.version) == next_major, f"{name}: {requirement.specifier}"


def test_ci_tests_each_lower_bound() -> None:
    requirements = runtime_requirements()
    lowest = pins("constraints-lowest.txt")
    assert lowest == {name: lower_bound(requirement) for name, requirement in requirements.items()}


@pytest.mark.parametrize("constraints", ["constraints.txt", "constraints-lowest.txt"])
def test_ci_pins_every_runtime_dependency_inside_its_range(constraints: str) -> None:
    requirements = runtime_requirements()
    pinned = pins(constraints)
    assert sorted(pinned) == sorted(requirements)
    for name, version in pinned.items():
        assert version in requirements[name].specifier, f"{constraints}: {name}=={version}"


def test_the_newest_run_is_newer_than_the_lowest_somewhere() -> None:
    """The two CI runs differ: otherwise one of them tests nothing the other does not."""
    newest, lowest = pins("constraints.txt"), pins("constraints-lowest.txt")
    assert all(newest[name] >= lowest[name] for name in lowest)
    assert any(newest[name] > lowest[name] for name in lowest)


def test_the_package_has_a_license_file_matching_its_declared_license() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert (
        "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text()
    )
