"""Build the deployable app zip: ``python -m infra.app_package --site-packages build/site-packages``.

The zip is what Azure runs: the repository minus what ``.funcignore`` leaves out (the same list
``func azure functionapp publish`` honours), plus the Linux packages the app needs under
``.python_packages/lib/site-packages`` (where the Python worker looks for them), so nothing has to be
built in Azure: the Marketplace's ``onedeploy`` and ``az functionapp deployment source config-zip``
take it as it is (no remote build).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = ".python_packages/lib/site-packages"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def ignore_patterns(root: Path = ROOT) -> list[str]:
    """The patterns of ``.funcignore`` (comments and blank lines dropped)."""
    lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a path (``a/b/c``) is left out: a pattern with a slash matches from the root, one without
    matches any part of the path (as in .gitignore)."""
    parts = relative.split("/")
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern + "/"):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


def app_files(root: Path = ROOT) -> Iterator[tuple[str, Path]]:
    """(name in the zip, file) for every file of the app, in a stable order."""
    patterns = ignore_patterns(root)
    found: list[tuple[str, Path]] = []
    for folder, subfolders, files in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # Prune left-out folders (node_modules, .venv...) instead of walking them.
        subfolders[:] = [name for name in subfolders if not ignored(prefix + name, patterns)]
        found += [(prefix + name, Path(folder) / name) for name in files if not ignored(prefix + name, patterns)]
    yield from sorted(found)


def build(out: Path, *, site_packages: Path | None, root: Path = ROOT) -> list[str]:
    """Write the zip; returns the names in it."""
    names: list[str] = []
    files = list(app_files(root))
    if site_packages is not None:
        files += [
            (f"{SITE_PACKAGES}/{path.relative_to(site_packages).as_posix()}", path)
            for path in sorted(site_packages.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (path.stat().st_mode & 0o777) << 16  # keep executables executable
            archive.writestr(info, path.read_bytes())
            names.append(name)
    return names


# Run with site disabled (-S): only the zip's own files and packages can be imported.
_SMOKE = """
import sys
sys.path[:0] = [{root!r}, {root!r} + "/.python_packages/lib/site-packages"]
import function_app
names = [f.get_function_name() for f in function_app.app.get_functions()]
print(len(names), "functions")
"""


def check_imports(zip_path: Path, python: str) -> str:
    """Unzip and import ``function_app`` with ``python -S`` (no other packages); its output, or RuntimeError."""
    with tempfile.TemporaryDirectory() as folder:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        result = subprocess.run(
            [python, "-S", "-c", _SMOKE.format(root=folder)],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"the app does not import from {zip_path} alone:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Command line: build the zip, say where it is and how big."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist/app.zip"))
    parser.add_argument("--site-packages", type=Path, help="pip --target folder of requirements.txt for Linux")
    parser.add_argument("--check-with", metavar="PYTHON", help="a Python 3.11 to import the built app with")
    args = parser.parse_args(argv)
    if args.site_packages is not None and not args.site_packages.is_dir():
        parser.error(f"{args.site_packages} is not a folder")
    names = build(args.out, site_packages=args.site_packages)
    if not any(name.startswith("static/vendor/") for name in names):
        print("warning: static/vendor is missing (make setup copies it from node_modules)", file=sys.stderr)
    print(f"{args.out} ({len(names)} files, {args.out.stat().st_size / 1e6:.1f} MB)")
    if args.check_with:
        try:
            print(f"imports on its own: {check_imports(args.out, args.check_with)}")
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
