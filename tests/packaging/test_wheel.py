"""A wheel of Hearth carries the model catalog and its schema inside the engine package, and
the engine installed from that wheel reads them there, with no checkout around it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_the_catalog_the_engine_finds(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "wheels"),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "wheels").glob("hearth-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in ("model_catalog.json", "model_catalog.schema.json"):
            assert zf.read(f"engine/{name}") == (ROOT / name).read_bytes()
        assert "engine/py.typed" in names
        # the window's icons travel with their licence
        assert "ui/icons/LICENSE" in names and "ui/icons/message-square.svg" in names
        zf.extractall(tmp_path / "site")
    # The engine from the unpacked wheel, run outside the checkout, loads the packaged catalog.
    probe = (
        "from engine.models import catalog; print(catalog.CATALOG_PATH); "
        "print(len(catalog.load().models))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    path, count = out.stdout.split()
    assert Path(path) == tmp_path / "site" / "engine" / "model_catalog.json"
    assert int(count) > 0
