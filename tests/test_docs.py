"""The docs keep up with the code: every setting the code reads is in README.md and .env.example."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables the operating system owns (read to find gcloud's files), not settings of ours.
OS_VARIABLES = {"HOME", "APPDATA"}
SETTING = re.compile(r"""(?:env\.get\(|\(env,\s*)"([A-Z][A-Z0-9_]+)\"""")


def settings_read_by_the_code() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "proxy.py", *ROOT.glob("server/*.py"), *ROOT.glob("translate/*.py"), *ROOT.glob("upstreams/*.py")]:
        names |= set(SETTING.findall(path.read_text()))
    return names - OS_VARIABLES


def test_the_code_reads_settings_we_can_find():
    """The scan finds the settings (guards the regex itself)."""
    assert {"PORT", "OPENAI_API_KEY", "PROXY_API_KEY"} <= settings_read_by_the_code()


def test_every_setting_is_documented_in_readme_and_env_example():
    """Each setting appears in README.md and .env.example."""
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    missing = {name for name in settings_read_by_the_code() if name not in readme or name not in example}
    assert not missing, f"undocumented settings: {sorted(missing)}"


def test_readme_quick_start_is_two_commands():
    """The Quick start block holds exactly two commands: run, and test."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    commands = [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
