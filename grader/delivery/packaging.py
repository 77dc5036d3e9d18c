"""The pyproject.toml of an installable copy of the grader: the student kit's self-check
(release.py) and the source the Gradescope zip builds from an installed grader (gradescope.py)."""
from __future__ import annotations

import json


def pyproject(name: str, version: str, dependencies: list[str], package_data: dict[str, list[str]], *,
              packages: list[str] | None = None, description: str = "", header: str = "") -> str:
    """`packages`: listed as they are; None: every package whose name starts with `grader`."""
    deps = ",\n".join(f"    {json.dumps(d)}" for d in dependencies)
    found = ('[tool.setuptools.packages.find]\ninclude = ["grader*"]' if packages is None
             else f"[tool.setuptools]\npackages = {json.dumps(packages)}")
    data = "\n".join(f"{json.dumps(package)} = {json.dumps(patterns)}" for package, patterns in package_data.items())
    about = f"description = {json.dumps(description)}\n" if description else ""
    return f"""{header}[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
{about}requires-python = ">=3.10"
dependencies = [
{deps},
]

[project.scripts]
mlp-grader = "grader.cli:run"

{found}

[tool.setuptools.package-data]
{data}
"""
