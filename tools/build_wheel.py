"""Build the SuperSmartMatch service wheel with a given version baked in.

    tools/build_wheel.py --version 2.0.0 --out dist/ [--force] [--python PY]

Copies ``service/`` to a temporary directory, rewrites the ``version = ...``
line of its pyproject.toml and runs ``PY -m pip wheel --no-deps
--no-build-isolation`` (PY defaults to the running interpreter, which needs
setuptools and wheel: use the repo's .venv). Idempotent: an existing wheel
is kept unless ``--force``, or unless a file of ``service/`` changed after it
was built (a stale wheel would deploy old code under a new name). The wheel
path is the last line on stdout.
Exit codes: 0 ok, 1 build failure, 2 usage error.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "supersmartmatch_service"
SERVICE_DIR = Path(__file__).resolve().parent.parent / "service"
# PEP 440 versions in canonical form (so the wheel file name is predictable).
VERSION_RE = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?$")
PYPROJECT_VERSION_RE = re.compile(r'^version\s*=\s*"[^"]*"\s*$', re.MULTILINE)
IGNORED = ("build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache")


def wheel_name(version: str) -> str:
    return f"{PACKAGE}-{version}-py3-none-any.whl"


def newer_source(target: Path, source: Path = SERVICE_DIR) -> Path | None:
    """A file of ``source`` modified after ``target`` was written (None when the wheel is current)."""
    built = target.stat().st_mtime_ns
    for path in sorted(source.rglob("*")):
        parts = path.relative_to(source).parts
        if any(Path(part).match(pattern) for part in parts for pattern in IGNORED):
            continue
        if path.is_file() and path.stat().st_mtime_ns > built:
            return path
    return None


def build(version: str, out_dir: Path, *, force: bool = False, python: str = sys.executable,
          source: Path = SERVICE_DIR) -> Path:
    """Build (or reuse) the wheel for ``version`` in ``out_dir``; return its path."""
    if not VERSION_RE.match(version):
        raise ValueError(f"version {version!r} is not a canonical PEP 440 version")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel_name(version)
    if target.exists() and not force:
        changed = newer_source(target, source)
        if changed is None:
            print(f"{target.name} exists, not rebuilding (use --force)", file=sys.stderr)
            return target
        print(f"{target.name} is older than {changed}: rebuilding", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="ssm-wheel-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(source, src, ignore=shutil.ignore_patterns(*IGNORED))
        pyproject = src / "pyproject.toml"
        text, count = PYPROJECT_VERSION_RE.subn(f'version = "{version}"', pyproject.read_text())
        if count != 1:
            raise RuntimeError(f"expected one version line in {pyproject}, found {count}")
        pyproject.write_text(text)
        wheel_dir = Path(tmp) / "wheels"
        subprocess.run(
            [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "--no-cache-dir", "-q", "--wheel-dir", str(wheel_dir), str(src)],
            check=True, stdout=sys.stderr)
        built = wheel_dir / wheel_name(version)
        if not built.exists():
            found = [p.name for p in wheel_dir.glob("*.whl")]
            raise RuntimeError(f"expected {built.name}, pip built {found}")
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(built, partial)
        partial.replace(target)  # atomic: never leave a half-written wheel behind
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--version", required=True, help="release version, e.g. 2.0.0")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if the wheel exists")
    parser.add_argument("--python", default=sys.executable, help="interpreter with pip+setuptools+wheel")
    args = parser.parse_args(argv)
    if not VERSION_RE.match(args.version):
        parser.error(f"--version {args.version!r} is not a canonical PEP 440 version")
    try:
        path = build(args.version, args.out, force=args.force, python=args.python)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"build_wheel: {exc}", file=sys.stderr)
        return 1
    print(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
