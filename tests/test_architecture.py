"""The layout as a contract: import-linter's contracts (pyproject.toml) hold, and no module
grows past the size where it is usually two concerns."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "loralab"
MAX_LINES = 400


@pytest.mark.skipif(shutil.which("lint-imports") is None,
                    reason="import-linter is not installed (pip install 'loralab[dev]')")
def test_import_contracts_are_kept(tmp_path):
    result = subprocess.run(["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these along their concerns: {long}"


def test_the_package_top_holds_only_shared_modules_and_entry_points():
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "atomic.py", "errors.py"]
