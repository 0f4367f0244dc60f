"""tools/build_wheel.py builds an installable wheel with the version baked in."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "build_wheel.py"


def build(out, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_build_wheel_version_metadata_and_idempotence(tmp_path):
    proc = build(tmp_path / "dist", "--version", "2.3.4")
    assert proc.returncode == 0, proc.stderr
    wheel = Path(proc.stdout.strip().splitlines()[-1])
    assert wheel == (tmp_path / "dist" / "supersmartmatch_service-2.3.4-py3-none-any.whl").resolve()
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read("supersmartmatch_service-2.3.4.dist-info/METADATA").decode()
        entry_points = zf.read("supersmartmatch_service-2.3.4.dist-info/entry_points.txt").decode()
        zf.extractall(tmp_path / "site")
    assert "\nVersion: 2.3.4\n" in meta
    assert "supersmartmatch-service = supersmartmatch_service.server:main" in entry_points
    # The installed package reports the baked-in version.
    check = subprocess.run([sys.executable, "-c",
                            "from supersmartmatch_service.config import Config; print(Config.from_env({}).version)"],
                           env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, timeout=30, check=False)
    assert check.stdout.strip() == "2.3.4", check.stderr

    mtime = wheel.stat().st_mtime_ns
    again = build(tmp_path / "dist", "--version", "2.3.4")
    assert again.returncode == 0 and Path(again.stdout.strip().splitlines()[-1]) == wheel
    assert "not rebuilding" in again.stderr and wheel.stat().st_mtime_ns == mtime
    forced = build(tmp_path / "dist", "--version", "2.3.4", "--force")
    assert forced.returncode == 0, forced.stderr
    assert wheel.stat().st_mtime_ns != mtime


def test_a_wheel_older_than_its_source_is_rebuilt(tmp_path):
    """A wheel left in dist/ by an earlier checkout is rebuilt once service/ changed, not reused."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import build_wheel
    finally:
        sys.path.pop(0)
    source = tmp_path / "service"
    shutil.copytree(build_wheel.SERVICE_DIR, source, ignore=shutil.ignore_patterns(*build_wheel.IGNORED))
    wheel = build_wheel.build("2.3.5", tmp_path / "dist", source=source)
    assert build_wheel.newer_source(wheel, source) is None
    # a cache file newer than the wheel does not count
    (source / "src" / "supersmartmatch_service" / "__pycache__").mkdir(exist_ok=True)
    (source / "src" / "supersmartmatch_service" / "__pycache__" / "x.pyc").write_bytes(b"")
    os.utime(source / "src" / "supersmartmatch_service" / "__pycache__" / "x.pyc", ns=(wheel.stat().st_mtime_ns + 10**9,) * 2)
    mtime = wheel.stat().st_mtime_ns
    assert build_wheel.build("2.3.5", tmp_path / "dist", source=source) == wheel
    assert wheel.stat().st_mtime_ns == mtime
    # a changed module does
    module = source / "src" / "supersmartmatch_service" / "metrics.py"
    module.write_text(module.read_text() + "\nREBUILT = True\n")
    os.utime(module, ns=(mtime + 10**9,) * 2)
    assert build_wheel.newer_source(wheel, source) == module
    build_wheel.build("2.3.5", tmp_path / "dist", source=source)
    with zipfile.ZipFile(wheel) as zf:
        assert "REBUILT = True" in zf.read("supersmartmatch_service/metrics.py").decode()


def test_build_wheel_rejects_bad_version(tmp_path):
    proc = build(tmp_path, "--version", "latest")
    assert proc.returncode == 2 and "PEP 440" in proc.stderr
    assert not list(tmp_path.iterdir())
