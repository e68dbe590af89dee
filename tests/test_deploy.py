"""Deployment: the one-file build runs alone, the systemd unit is locked down, the container image is sane.

How "alone" is made strict: the pyz runs under `python -I -S`. `-I` (isolated mode) drops PYTHONPATH,
PYTHON* variables and the user site, but a venv interpreter still sees its own site-packages, where
h11 and certifi are installed for these tests; `-S` skips the site module, so sys.path holds the
standard library and the archive only. A guard test shows that this interpreter cannot import h11
by itself, so a pyz that forgot a dependency fails here instead of borrowing the test environment's.
The proxy runs from a directory holding nothing but the pyz, with an environment holding only PATH
and TMPDIR, so no .env, no upstream key: it answers with the echo provider.

Docker is not needed: the Dockerfile is checked statically, and its HEALTHCHECK command is run
against a live proxy.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import free_port, request, wait_until_healthy

import proxy
from server.config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "switchboard.service"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

ISOLATED_PYTHON = [sys.executable, "-I", "-S"]
START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0
MESSAGE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "ping from the pyz"}],
}


def load_builder():
    """deploy/build_pyz.py as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_pyz", DEPLOY / "build_pyz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = load_builder()


# ---------------------------------------------------------------------------------------------
# Helpers: building, running and talking to the pyz
# ---------------------------------------------------------------------------------------------


def build_pyz(output: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """Run the build command the README gives, from the checkout, writing to `output`."""
    env = dict(os.environ, **extra_env)
    return subprocess.run(
        [sys.executable, str(DEPLOY / "build_pyz.py"), "-o", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("build") / "switchboard.pyz"
    result = build_pyz(output)
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture
def lonely_pyz(pyz, tmp_path) -> Path:
    """The pyz copied into a directory that holds nothing else."""
    host = tmp_path / "host"
    host.mkdir()
    return Path(shutil.copy2(pyz, host / "switchboard.pyz"))


def clean_env(**extra: str) -> dict[str, str]:
    """An environment with no PYTHON*, no provider keys and no proxy variables."""
    return {"PATH": os.environ.get("PATH", os.defpath), **extra}


@contextlib.contextmanager
def running_pyz(path: Path, port: int, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """The pyz serving on `port` from its own directory; killed on the way out if still running."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*ISOLATED_PYTHON, path.name, "--port", str(port)],
            cwd=path.parent, env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(port, START_TIMEOUT_SECONDS, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


# ---------------------------------------------------------------------------------------------
# The one-file build
# ---------------------------------------------------------------------------------------------


def test_isolated_interpreter_cannot_import_the_dependencies_by_itself():
    """The interpreter the pyz tests use has no h11 or certifi of its own (guards the isolation)."""
    for name in builder.DEPENDENCIES:
        command = [*ISOLATED_PYTHON, "-c", f"import {name}"]
        result = subprocess.run(command, env=clean_env(), capture_output=True, timeout=30)
        assert result.returncode != 0 and b"ModuleNotFoundError" in result.stderr


def test_build_writes_an_executable_archive_with_a_python3_shebang(pyz):
    """The pyz starts with `#!/usr/bin/env python3`, is executable and is a valid zip."""
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    assert zipfile.is_zipfile(pyz)


def test_archive_holds_the_proxy_and_its_dependencies_and_nothing_else(pyz):
    """Every project module, h11, certifi with its CA bundle and the licences; no tests, caches or bench."""
    names = set(zipfile.ZipFile(pyz).namelist())
    modules = [p for package in builder.PROJECT_PACKAGES for p in (ROOT / package).glob("*.py")]
    project = {"proxy.py", *(p.relative_to(ROOT).as_posix() for p in modules)}
    assert project <= names
    assert {"__main__.py", "h11/__init__.py", "certifi/__init__.py", "certifi/cacert.pem"} <= names
    assert any(name.startswith("licenses/certifi/") for name in names)
    assert any(name.startswith("licenses/h11/") for name in names)
    unwanted = [n for n in names if n.endswith(".pyc") or {"__pycache__", "tests", "bench"} & set(n.split("/")[:-1])]
    assert not unwanted


def test_main_module_exits_with_the_proxy_status():
    """__main__.py hands proxy.main()'s return value to sys.exit."""
    assert "sys.exit(proxy.main())" in builder.MAIN_PY.decode()


def test_two_builds_are_byte_identical_with_sorted_entries_and_fixed_timestamps(pyz, tmp_path):
    """A second build gives the same bytes; entries are sorted, dated 1980-01-01 and mode 0644."""
    again = tmp_path / "again.pyz"
    result = build_pyz(again, SOURCE_DATE_EPOCH="")
    assert result.returncode == 0, result.stderr
    assert again.read_bytes() == pyz.read_bytes()
    infos = zipfile.ZipFile(pyz).infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_source_date_epoch_sets_every_entry_timestamp(tmp_path):
    """With SOURCE_DATE_EPOCH=1700000000 every entry is dated 2023-11-14 22:13:20 (UTC)."""
    output = tmp_path / "dated.pyz"
    result = build_pyz(output, SOURCE_DATE_EPOCH="1700000000")
    assert result.returncode == 0, result.stderr
    assert {i.date_time for i in zipfile.ZipFile(output).infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_build_prints_the_archive_sha256(tmp_path):
    """The build reports the digest, so two builders can compare their archives."""
    output = tmp_path / "digest.pyz"
    result = build_pyz(output)
    assert f"sha256 {hashlib.sha256(output.read_bytes()).hexdigest()}" in result.stdout


def test_build_packs_what_pyproject_installs():
    """The build's modules, packages and dependencies match pyproject.toml."""
    tomllib = pytest.importorskip("tomllib")
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert [f"{m}.py" for m in setuptools["py-modules"]] == list(builder.PROJECT_MODULES)
    assert sorted(setuptools["packages"]) == sorted(builder.PROJECT_PACKAGES)
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(re.match(r"[A-Za-z0-9_.-]+", r).group() for r in requirements) == sorted(builder.DEPENDENCIES)


def test_pyz_prints_its_version_in_isolated_mode(lonely_pyz):
    """`python3 -I switchboard.pyz --version` (and with -S too) prints the proxy's version."""
    for flags in (["-I"], ["-I", "-S"]):
        result = subprocess.run(
            [sys.executable, *flags, lonely_pyz.name, "--version"],
            cwd=lonely_pyz.parent, env=clean_env(), capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"switchboard {proxy.VERSION}"


def test_pyz_serves_health_and_echo_from_an_empty_directory_and_exits_0_on_sigterm(lonely_pyz, tmp_path):
    """From a directory holding only the pyz: /health is 200, /v1/messages gets the echo reply, SIGTERM exits 0."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    port = free_port()
    log = tmp_path / "pyz.log"
    with running_pyz(lonely_pyz, port, clean_env(TMPDIR=str(temporary)), log) as process:
        answer = request(port, "POST", "/v1/messages", MESSAGE)
        body = answer.json()
        assert answer.status == 200, body
        text = body["content"][0]["text"]
        assert "echo provider" in text and "ping from the pyz" in text
        # Only the echo provider: no TLS upstream, so certifi's bundle is not even extracted (loading it
        # from the zip is the next test's subject).
        assert list(temporary.iterdir()) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0, log.read_text()
    # Nothing but the usage ledger, in its default place (the working directory), closed cleanly: no -wal left.
    assert sorted(p.name for p in lonely_pyz.parent.iterdir()) == ["switchboard-usage.db", "switchboard.pyz"]
    assert not list(temporary.iterdir()), "the extracted CA bundle is removed at exit"


def test_pyz_exits_2_on_a_configuration_error(lonely_pyz):
    """A non-loopback host without PROXY_API_KEY exits 2 with the proxy's one-line message."""
    result = subprocess.run(
        [*ISOLATED_PYTHON, lonely_pyz.name, "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=lonely_pyz.parent, env=clean_env(), capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert "PROXY_API_KEY" in result.stderr


def test_certifi_in_the_pyz_gives_a_real_file_that_loads_into_a_tls_context(lonely_pyz, tmp_path):
    """certifi.where() from the zip is a file outside the archive, and upstreams' TLS context loads it."""
    script = (
        "import sys; sys.path.insert(0, 'switchboard.pyz')\n"
        "import certifi, json\n"
        "from upstreams.http import tls_context\n"
        "print(json.dumps([certifi.__file__, certifi.where(), tls_context(None).cert_store_stats()['x509_ca']]))\n"
    )
    result = subprocess.run(
        [*ISOLATED_PYTHON, "-c", script], cwd=lonely_pyz.parent, env=clean_env(TMPDIR=str(tmp_path)),
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    module_file, bundle, authorities = json.loads(result.stdout)
    assert "switchboard.pyz" in module_file
    assert Path(bundle).parent == tmp_path and "switchboard.pyz" not in bundle
    assert authorities > 100


# ---------------------------------------------------------------------------------------------
# systemd
# ---------------------------------------------------------------------------------------------


def unit_directives() -> dict[str, list[str]]:
    """Key -> every value it is given in the unit, in order (keys may repeat)."""
    directives: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


REQUIRED_UNIT_DIRECTIVES = {
    "EnvironmentFile": "/etc/switchboard/switchboard.env",
    "User": "switchboard",
    "DynamicUser": "yes",
    "Restart": "on-failure",
    "RestartPreventExitStatus": "2",
    "KillSignal": "SIGTERM",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
    "LogsDirectory": "switchboard",
    "WantedBy": "multi-user.target",
}


@pytest.mark.parametrize("key", sorted(REQUIRED_UNIT_DIRECTIVES))
def test_systemd_unit_sets_the_locked_down_directive(key):
    """The unit sets each required directive to the expected value."""
    assert REQUIRED_UNIT_DIRECTIVES[key] in unit_directives().get(key, [])


def test_systemd_unit_filters_system_calls_to_a_service_set():
    """System calls are limited to @system-service, minus the privileged and resource groups."""
    filters = unit_directives()["SystemCallFilter"]
    assert "@system-service" in filters and "~@privileged @resources" in filters


def test_systemd_unit_runs_the_installed_pyz_in_isolated_mode():
    """ExecStart runs /opt/switchboard/switchboard.pyz with the system python3 and -I."""
    (command,) = unit_directives()["ExecStart"]
    assert shlex.split(command) == ["/usr/bin/python3", "-I", "/opt/switchboard/switchboard.pyz"]


def test_systemd_stop_timeout_outlasts_the_graceful_shutdown():
    """TimeoutStopSec exceeds SHUTDOWN_GRACE's default plus the 5 s the proxy takes to cancel."""
    (timeout,) = unit_directives()["TimeoutStopSec"]
    seconds = int(re.fullmatch(r"(\d+)s?", timeout).group(1))
    assert seconds > Config.from_env({}).shutdown_grace + 5


def test_systemd_analyze_verify_accepts_the_unit():
    """`systemd-analyze verify` passes on the unit, with no complaint about any of its lines."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("verify checks that ExecStart's /usr/bin/python3 exists, and this host has none")
    result = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify only warns about a directive it cannot parse, naming the file and line.
    assert f"{UNIT.name}:" not in output, output


def test_systemd_analyze_security_rates_the_unit_exposure_at_most_2():
    """`systemd-analyze security --offline` rates the unit's exposure 2.0 or lower (of 10)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60,
    )
    if "--offline" in result.stderr or "--threshold" in result.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit file offline (needs systemd >= 250)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


# ---------------------------------------------------------------------------------------------
# Container
# ---------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_values(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile_instructions() if name == keyword]


def test_dockerfile_builds_on_a_slim_python_base():
    """The only base image is an official python 3.x slim tag (3.10 or newer)."""
    (base,) = dockerfile_values("FROM")
    match = re.fullmatch(r"python:3\.(\d+)-slim", base)
    assert match and int(match.group(1)) >= 10


def test_dockerfile_runs_as_a_non_root_user():
    """The last USER is a non-zero numeric uid and gid, and the RUN step creates that user."""
    user = dockerfile_values("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    assert any(f"--uid {uid}" in run for run in dockerfile_values("RUN"))
    last_user = max(i for i, (name, _) in enumerate(dockerfile_instructions()) if name == "USER")
    assert all(name != "RUN" for name, _ in dockerfile_instructions()[last_user:])


def test_dockerfile_listens_on_all_interfaces_port_8082_in_exec_form():
    """HOST=0.0.0.0 and PORT=8082 are set, 8082 is exposed, and CMD is exec form so SIGTERM reaches the proxy."""
    environment = " ".join(dockerfile_values("ENV"))
    assert "HOST=0.0.0.0" in environment and "PORT=8082" in environment
    assert dockerfile_values("EXPOSE") == ["8082"]
    assert json.loads(dockerfile_values("CMD")[-1]) == ["switchboard"]
    assert dockerfile_values("STOPSIGNAL") == ["SIGTERM"]


def healthcheck_command() -> list[str]:
    (healthcheck,) = dockerfile_values("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    return json.loads(command)


def test_dockerfile_healthcheck_passes_against_a_running_proxy_and_fails_without_one(lonely_pyz, tmp_path):
    """The HEALTHCHECK command exits 0 against a live proxy (even with HTTP_PROXY set) and non-zero on a dead port."""
    argv = healthcheck_command()
    assert argv[0] == "python" and "/health" in argv[-1]
    probe = [sys.executable, *argv[1:]]
    port = free_port()
    with running_pyz(lonely_pyz, port, clean_env(), tmp_path / "pyz.log"):
        # A proxy variable meant for upstream traffic must not swallow the local health request.
        env = clean_env(PORT=str(port), HTTP_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
        assert subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode == 0
    assert subprocess.run(probe, env=clean_env(PORT=str(port)), capture_output=True, timeout=30).returncode != 0


def copied_sources() -> set[str]:
    """Every source path named by a COPY instruction (the last argument is the destination)."""
    return {source.rstrip("/") for arguments in dockerfile_values("COPY") for source in arguments.split()[:-1]}


def test_dockerfile_copies_what_pip_install_needs():
    """COPY brings pyproject.toml, its readme, every py-module and every package."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    needed = {"pyproject.toml", project["project"]["readme"], *(f"{m}.py" for m in setuptools["py-modules"])}
    needed |= set(setuptools["packages"])
    copied = copied_sources()
    assert needed <= copied


def test_docker_build_context_admits_only_what_the_dockerfile_copies():
    """.dockerignore excludes everything, then re-admits exactly the COPY sources (never .env)."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = copied_sources()
    assert admitted == copied
    assert not any(".env" in name for name in admitted)
