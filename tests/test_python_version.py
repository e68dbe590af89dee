"""Runtime code stays within Python 3.10 and the standard library plus h11 and certifi."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = [ROOT / "proxy.py", *(path for room in ("server", "translate", "upstreams") for path in sorted((ROOT / room).glob("*.py")))]
ALLOWED_THIRD_PARTY = {"h11", "certifi"}
TRANSLATE_FORBIDDEN = {"asyncio", "socket", "os", "time", "ssl", "random"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_code_needs_no_python_newer_than_3_10():
    """vermin finds no syntax or standard-library API newer than 3.10 in proxy.py, server/, translate/ and upstreams/."""
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent)) or shutil.which("vermin")
    assert vermin, "vermin is a test dependency: pip install '.[test]'"
    result = subprocess.run([vermin, "--no-tips", "--violations", "--target=3.10-", *map(str, RUNTIME)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_runtime_code_imports_only_the_standard_library_h11_and_certifi():
    """No runtime dependency beyond h11 and certifi."""
    stdlib = set(sys.stdlib_module_names)
    for path in RUNTIME:
        foreign = imported_modules(path) - stdlib - ALLOWED_THIRD_PARTY - {"server", "translate", "upstreams", "proxy"}
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_translate_does_no_io():
    """translate/ is sans-I/O: it never imports asyncio, socket, os, time, ssl or random."""
    for path in sorted((ROOT / "translate").glob("*.py")):
        assert not imported_modules(path) & TRANSLATE_FORBIDDEN, path.name
