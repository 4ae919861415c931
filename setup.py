"""Everything is in pyproject.toml except one build step: a wheel carries the top-level model
catalog and its schema inside the engine package (engine/models/catalog.py looks there first), so a
`pip install hearth` has the catalog without the repository around it."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOG_FILES = ("model_catalog.json", "model_catalog.schema.json")


class BuildPyWithCatalog(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        for name in CATALOG_FILES:
            self.copy_file(name, str(Path(self.build_lib) / "engine" / name))


setup(cmdclass={"build_py": BuildPyWithCatalog})
