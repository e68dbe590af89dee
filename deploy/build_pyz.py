#!/usr/bin/env python3
"""Build switchboard.pyz: the proxy and its two pure-Python dependencies in one runnable file.

    python deploy/build_pyz.py                  # writes dist/switchboard.pyz
    python deploy/build_pyz.py -o /tmp/sb.pyz

The result runs with `python3 switchboard.pyz [--host ...] [--port ...] [--env-file ...]` on any host
with Python >= 3.10, without pip, a virtual environment or network access.

Policies:
- Standard library only. The proxy's own code (proxy.py, server/, translate/, upstreams/) comes from this
  checkout; h11 and certifi come from the environment running the build, found through importlib,
  so run it with the interpreter the project is installed in (`pip install .` first).
- Reproducible: entries are sorted, every timestamp is fixed (SOURCE_DATE_EPOCH when set, else
  1980-01-01, the earliest a zip can hold) and every mode is 0644, so the same sources and the same
  zlib give the same bytes. The build prints the archive's sha256 to compare.
- Only what runs goes in: no __pycache__, tests or bench; the project packages contribute only .py
  files. The dependencies' licence files travel under licenses/<name>/ (certifi's MPL-2.0 asks that
  its notice go along with copies).
- `__main__.py` calls proxy.main() and exits with its status (2 on a configuration error), and a
  `#!/usr/bin/env python3` line makes `./switchboard.pyz` work too. The archive is sys.path[0], so
  the bundled h11 and certifi win over any older copies installed on the host.
- TLS needs no special handling: certifi.where() inside a zip copies cacert.pem to a private
  temporary file (importlib.resources) and removes it at exit; the proxy builds its TLS context at
  start, so a proxy that answers /health has loaded the bundle. SSL_CERT_FILE keeps its meaning
  (a different CA bundle) and is never set on the user's behalf.

Known shortcuts: no bytecode in the archive (zipimport compiles each module at start, about a tenth
of a second), because .pyc files would tie the archive to one Python version.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import sys
import time
import zipapp
import zipfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("dist") / "switchboard.pyz"
INTERPRETER = "/usr/bin/env python3"

# What the archive holds; keep in step with [tool.setuptools] in pyproject.toml (a test checks).
PROJECT_MODULES = ("proxy.py",)
PROJECT_PACKAGES = ("server", "translate", "upstreams")
DEPENDENCIES = ("h11", "certifi")
EXCLUDED_DIRECTORIES = frozenset({"__pycache__", "tests", "bench"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
LICENSE_WORDS = ("LICENSE", "LICENCE", "COPYING", "NOTICE")

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--, whatever the builder's umask

MAIN_PY = b'''"""Entry point of switchboard.pyz: run the proxy and exit with its status."""

import sys

import proxy

sys.exit(proxy.main())
'''


class BuildError(Exception):
    """The archive cannot be built from this environment; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Collecting the members
# ---------------------------------------------------------------------------------------------


def package_directory(name: str) -> Path:
    """The directory an installed package is imported from.

    Raises BuildError when it is not installed, or not installed as a plain directory.
    """
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise BuildError(f"{name} is not installed for {sys.executable}: run `pip install .` in the checkout first")
    directory = Path(locations[0])
    if not directory.is_dir():
        raise BuildError(f"{name} is installed as {directory}, not a directory; reinstall it with pip")
    return directory


def _files_under(directory: Path) -> list[Path]:
    """Every file under `directory`, skipping caches, tests and bytecode."""
    found = []
    for path in directory.rglob("*"):
        inside = path.relative_to(directory).parts[:-1]
        if path.is_file() and not EXCLUDED_DIRECTORIES.intersection(inside) and path.suffix not in EXCLUDED_SUFFIXES:
            found.append(path)
    return found


def _license_members(name: str) -> dict[str, bytes]:
    """The licence files of an installed distribution, as licenses/<name>/<file>.

    Raises BuildError when the distribution's metadata is missing.
    """
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise BuildError(f"{name} has no installed metadata for {sys.executable}: reinstall it with pip") from None
    members = {}
    for file in distribution.files or []:
        if any(word in file.name.upper() for word in LICENSE_WORDS):
            members[f"licenses/{name}/{file.name}"] = Path(file.locate()).read_bytes()
    return members


def archive_members(root: Path = ROOT) -> dict[str, bytes]:
    """Archive name -> content for everything the pyz holds.

    Raises BuildError when a project file or a dependency is missing.
    """
    members: dict[str, bytes] = {"__main__.py": MAIN_PY}
    for module in PROJECT_MODULES:
        path = root / module
        if not path.is_file():
            raise BuildError(f"{path} is missing: run the build from a switchboard checkout")
        members[module] = path.read_bytes()
    for package in PROJECT_PACKAGES:
        for path in _files_under(root / package):
            if path.suffix == ".py":
                members[path.relative_to(root).as_posix()] = path.read_bytes()
    for name in DEPENDENCIES:
        directory = package_directory(name)
        for path in _files_under(directory):
            members[f"{name}/{path.relative_to(directory).as_posix()}"] = path.read_bytes()
        members.update(_license_members(name))
    return members


# ---------------------------------------------------------------------------------------------
# Writing the archive
# ---------------------------------------------------------------------------------------------


def fixed_timestamp(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int, int, int, int]:
    """The zip timestamp every member gets: SOURCE_DATE_EPOCH (UTC) when set, else 1980-01-01.

    Raises BuildError when SOURCE_DATE_EPOCH is not an integer.
    """
    value = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return ZIP_EPOCH
    try:
        moment = time.gmtime(int(value))
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds") from None
    # Zip timestamps start in 1980 and have two-second resolution.
    stamp = (moment.tm_year, moment.tm_mon, moment.tm_mday, moment.tm_hour, moment.tm_min, moment.tm_sec // 2 * 2)
    return max(ZIP_EPOCH, stamp)


def zip_bytes(members: dict[str, bytes], timestamp: tuple[int, int, int, int, int, int] = ZIP_EPOCH) -> bytes:
    """A deflated zip of `members`, sorted by name, every entry with `timestamp` and mode 0644."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=timestamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is read as one whatever the build host
            archive.writestr(info, members[name])
    return buffer.getvalue()


def build(output: Path, root: Path = ROOT) -> Path:
    """Write the runnable archive to `output` (created or replaced, parents made) and return its path.

    Raises BuildError when a project file or a dependency is missing.
    """
    payload = zip_bytes(archive_members(root), fixed_timestamp())
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    # zipapp puts the shebang line in front of the zip (zip readers find the archive from its end).
    zipapp.create_archive(io.BytesIO(payload), partial, interpreter=INTERPRETER)
    partial.chmod(0o755)
    os.replace(partial, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build switchboard.pyz, a one-file build of the proxy.")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"where to write it (default {DEFAULT_OUTPUT})"
    )
    args = parser.parse_args(argv)
    try:
        path = build(args.output)
    except BuildError as error:
        print(f"build_pyz: {error}", file=sys.stderr)
        return 1
    data = path.read_bytes()
    bundled = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in DEPENDENCIES)
    print(f"wrote {path} ({len(data) // 1024} KiB, with {bundled})")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
