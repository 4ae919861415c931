"""requirements/release.lock, from which the release venv is installed with --require-hashes,
agrees with pyproject.toml: a dependency added, dropped or re-ranged in pyproject without
`packaging/relock.sh` fails here, not in a release build a week later (issue 33: a build from
the same commit failed because its dependencies were resolved afresh)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "release.lock"
# Built from source by the set-up and the release (its version is scripts/_llama.sh's).
NOT_LOCKED = {"llama-cpp-python"}
ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n    --hash=sha256:([0-9a-f]{64})$", re.M)


def locked() -> dict[str, Version]:
    text = LOCK.read_text(encoding="utf-8")
    entries = ENTRY.findall(text)
    pins = [line for line in text.splitlines() if "==" in line]
    assert len(entries) == len(pins), "every pin is followed by its sha256"
    names = [canonicalize_name(name) for name, _version, _digest in entries]
    assert len(names) == len(set(names)), "each distribution is locked once"
    return {canonicalize_name(n): Version(v) for n, v, _digest in entries}


def requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["packaging"][:1]
    assert listed[-1].startswith("pyinstaller"), "the release venv freezes with PyInstaller"
    return [Requirement(text) for text in listed]


def test_every_dependency_is_locked_at_a_version_pyproject_accepts() -> None:
    lock = locked()
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        if name in NOT_LOCKED:
            assert name not in lock
            continue
        assert name in lock, f"{name} is in pyproject.toml but not in the lock: relock"
        version = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name} {version} in the lock, but pyproject.toml asks for {requirement.specifier}"
        )


def test_the_lock_holds_cpu_torch_and_what_it_names_exists_once() -> None:
    lock = locked()
    assert str(lock["torch"]).endswith("+cpu")  # a CUDA torch would be gigabytes more
    assert len(lock) > 50  # the whole tree, not only the direct dependencies
