"""The deployable app zip: the app's files less .funcignore, plus the packages under .python_packages."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from infra import app_package


def test_the_zip_holds_the_app_and_its_packages_and_nothing_of_the_workshop(tmp_path: Path) -> None:
    packages = tmp_path / "site-packages"
    (packages / "fakepkg" / "__pycache__").mkdir(parents=True)
    (packages / "fakepkg" / "__init__.py").write_text("VALUE = 1\n")
    (packages / "fakepkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    names = app_package.build(tmp_path / "app.zip", site_packages=packages)
    assert {"function_app.py", "host.json", "requirements.txt", "shared/config.py", "blueprints/public.py",
            "static/widget.js", ".python_packages/lib/site-packages/fakepkg/__init__.py"} <= set(names)  # fmt: skip
    workshop = ("tests/", "devhost/", "infra/", "bench/", "node_modules/", ".venv/", ".tools/", ".git/", "dist/")
    assert not [n for n in names if n.startswith(workshop)]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not {"local.settings.json", ".funcignore", "Makefile", "requirements-dev.txt"} & set(names)
    with zipfile.ZipFile(tmp_path / "app.zip") as archive:
        assert archive.read("host.json") == (app_package.ROOT / "host.json").read_bytes()


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("tests/unit/test_x.py", True),
        ("shared/__pycache__/config.cpython-311.pyc", True),
        ("static/vendor/.installed", True),
        ("static/vendor/signalr.min.js", False),
        ("shared/billing/metering.py", False),
        ("local.settings.json", True),
    ],
)
def test_funcignore_patterns_match_as_gitignore_does(path: str, left_out: bool) -> None:
    assert app_package.ignored(path, app_package.ignore_patterns()) is left_out


def test_a_zip_without_its_packages_fails_the_import_check(tmp_path: Path) -> None:
    bare = tmp_path / "bare.zip"
    app_package.build(bare, site_packages=None)
    with pytest.raises(RuntimeError, match="does not import"):
        app_package.check_imports(bare, sys.executable)
