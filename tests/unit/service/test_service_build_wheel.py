"""tools/build_wheel.py builds an installable wheel with the version baked in."""
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


def test_build_wheel_rejects_bad_version(tmp_path):
    proc = build(tmp_path, "--version", "latest")
    assert proc.returncode == 2 and "PEP 440" in proc.stderr
    assert not list(tmp_path.iterdir())
