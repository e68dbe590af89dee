"""Interleaved A/B comparison of two trees of this repository: `run.py --baseline REF [--change REF]`.

    /tmp/venv/bin/python bench/run.py --baseline HEAD~1 --scenarios small,stream50 --concurrency 16

The machines are noisy, so a change is judged by ratios measured in one run, with both proxies
loaded alternately: "change" (the work tree, or commit `--change REF`) and "baseline" (commit REF,
extracted with `git archive` into the run's temporary directory, removed at exit). Both are started
exactly as run.py starts a proxy (same interpreter, `proxy.py` of that tree with cwd = that tree, same
settings) against the same fake upstream, and measured by the same load generator.

Policies:
- Per row (scenario, concurrency): the direct path (straight to the fake upstream) once, for the
  added latency; then `--rounds` rounds of change and baseline, alternating which goes first each
  round, so drift on the machine hits both sides alike. Figures are the medians over the rounds;
  ratios are change / baseline of those medians; the per-round CPU ratios are shown as the spread.
- Both trees' bytecode is cached in one private directory (PYTHONPYCACHEPREFIX under the temporary
  directory, instead of PYTHONDONTWRITEBYTECODE): neither side reads stale or missing `__pycache__`
  of its tree, and one throw-away start of each side warms the cache before anything is measured.
- RSS idle: VmRSS of each fresh proxy 0.5 s after its first 200 on /health (as measure_memory reads
  it: the figure the idle target is stated in), and again after one request of every scenario of its
  kind, 0.5 s later (warm). Start-up: `--startup-runs` interleaved starts of each side.
- Not run in this mode: the 1000-open-streams memory test and `--workers` (asked for, they are
  named as skipped).
"""

from __future__ import annotations

import datetime
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import run as rb  # the running bench/run.py (it registers itself under this name)

SIDES = ("change", "baseline")


# =============================================================================================
# The two trees
# =============================================================================================


def git(*args: str) -> str:
    result = subprocess.run(["git", "--no-optional-locks", "-C", str(rb.ROOT), *args], check=False, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()[:300]}")
    return result.stdout.strip()


def describe(ref: str | None) -> str:
    """Short commit id of `ref`; for the work tree (None) of HEAD, "+dirty" with uncommitted changes."""
    if ref is not None:
        return git("rev-parse", "--short", f"{ref}^{{commit}}")
    commit = git("rev-parse", "--short", "HEAD")
    return commit + ("+dirty" if git("status", "--porcelain") else "")


def materialise(ref: str, destination: Path) -> Path:
    """The files of commit `ref` under `destination` (git archive | tar; no change to the repository)."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    destination.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(rb.ROOT), "archive", "--format=tar", commit], stdout=subprocess.PIPE)
    try:
        tar = subprocess.run(["tar", "-x", "-C", str(destination)], stdin=archive.stdout, check=False, capture_output=True, timeout=300)
    finally:
        archive.stdout.close()
        archive.wait(60)
    if archive.returncode != 0 or tar.returncode != 0:
        raise RuntimeError(f"could not extract {ref} ({commit[:12]}): {tar.stderr.decode(errors='replace')[:300]}")
    if not (destination / "proxy.py").exists():
        raise RuntimeError(f"{ref} ({commit[:12]}) has no proxy.py")
    return destination


@dataclass
class Side:
    label: str  # "change" or "baseline"
    root: Path
    commit: str
    proxies: dict[str, rb.Proxy] = field(default_factory=dict)
    fresh_rss: dict[str, float] = field(default_factory=dict)  # 0.5 s after the first 200 on /health
    idle_rss: dict[str, float] = field(default_factory=dict)
    loaded_rss: dict[str, float] = field(default_factory=dict)
    startup: list[float] = field(default_factory=list)
    failed_warmups: int = 0  # scenarios the proxy did not answer right before its idle RSS was read


def environment(bench: rb.Bench, kind: str) -> dict[str, str]:
    env = rb.proxy_environment(kind, bench.upstream.port)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bench.workdir / "pycache")
    return env


def start(bench: rb.Bench, side: Side, kind: str) -> rb.Proxy:
    try:
        return rb.start_proxy(bench.python, kind, bench.upstream.port, bench.workdir, root=side.root, environment=environment(bench, kind))
    except RuntimeError as error:
        raise RuntimeError(f"{side.label} ({side.commit}, {side.root}): {error}") from None


# =============================================================================================
# Measuring
# =============================================================================================


@dataclass
class Cell:
    scenario: rb.Scenario
    concurrency: int
    direct: rb.Measure | None = None
    runs: dict[str, list[rb.Measure]] = field(default_factory=lambda: {s: [] for s in SIDES})
    failure: str = ""

    def median(self, side: str, attribute: str) -> float | None:
        values = [getattr(m, attribute) for m in self.runs[side] if getattr(m, attribute) is not None]
        return statistics.median(values) if values else None

    def cpu_ratios(self) -> list[float]:
        """change / baseline CPU per request, round by round."""
        pairs = zip(self.runs["change"], self.runs["baseline"])
        return [c.cpu_us / b.cpu_us for c, b in pairs if c.cpu_us and b.cpu_us]


def stream_chunks(scenario: rb.Scenario) -> int | None:
    """Text chunks per answer, from the fake upstream's model name (`bench-s<N>`) in a stream's body."""
    if not scenario.stream:
        return None
    match = re.search(rb'"model"\s*:\s*"[^"]*bench-s(\d+)', scenario.body)
    return int(match.group(1)) if match else None


def warm_and_check(bench: rb.Bench, side: Side, scenarios: dict[str, rb.Scenario], selected: list[rb.Scenario]) -> dict[str, str]:
    """One request of every scenario to this side's proxies, then their idle RSS; failures of the selected ones."""
    failures = {}
    time.sleep(0.5)
    for kind, proxy in side.proxies.items():
        side.fresh_rss[kind] = rb.rss_mb(proxy.pids())
    for scenario in scenarios.values():
        proxy = side.proxies.get(scenario.proxy_kind)
        if proxy is None:
            continue
        problem = rb.sanity_check(bench, proxy, scenario)
        if problem:
            if not side.failed_warmups:
                log = bench.workdir / f"proxy-{proxy.kind}-{proxy.port}.log"
                tail = log.read_text(errors="replace").splitlines()[-6:] if log.exists() else []
                rb.progress(f"{side.label}: {scenario.name}: {problem[:120]}; the end of its log:\n  " + "\n  ".join(tail))
            side.failed_warmups += 1
            if scenario in selected:
                failures[scenario.name] = f"{side.label}: {problem}"
    time.sleep(0.5)
    for kind, proxy in side.proxies.items():
        side.idle_rss[kind] = rb.rss_mb(proxy.pids())
    return failures


def measure_cell(bench: rb.Bench, sides: dict[str, Side], cell: Cell, rounds: int) -> None:
    s, c = cell.scenario, cell.concurrency
    cell.direct = bench.measure(bench.upstream.port, s.direct_path, s.body, s.headers, c, s.stream, None)
    for round_index in range(rounds):
        order = SIDES if round_index % 2 == 0 else SIDES[::-1]
        for label in order:
            proxy = sides[label].proxies[s.proxy_kind]
            cell.runs[label].append(bench.measure(proxy.port, s.path, s.body, s.headers, c, s.stream, proxy.pids()))


def measure_startup(bench: rb.Bench, sides: dict[str, Side]) -> None:
    for round_index in range(bench.args.startup_runs):
        for label in SIDES if round_index % 2 == 0 else SIDES[::-1]:
            proxy = start(bench, sides[label], "translate")
            sides[label].startup.append(proxy.started_in)
            rb.stop(proxy.process)


# =============================================================================================
# The report
# =============================================================================================


def _ratio(change: float | None, baseline: float | None, digits: int = 2) -> str:
    return "-" if not change or not baseline else f"{change / baseline:.{digits}f}"


HEADER = (
    "| scenario | c | CPU us/req change | baseline | ratio | CPU ratio per round "
    "| rps change | baseline | ratio | added p50 ms change | baseline "
    "| CPU us/chunk change | baseline | ratio | other CPU% max |\n"
    "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table(cells: list[Cell]) -> str:
    lines = [HEADER]
    for cell in cells:
        name, c = cell.scenario.name, cell.concurrency
        if cell.failure:
            lines.append(f"| {name} | {c} | failed: {cell.failure} |" + " |" * 12)
            continue
        problems = [f"{label}: {m.errors} errors, {m.bad_status} non-200"
                    for label, measures in (("direct", [cell.direct]), *cell.runs.items())
                    for m in measures if m.errors or m.bad_status]
        if problems:
            name += " (" + "; ".join(problems) + ")"
        cpu = {s: cell.median(s, "cpu_us") for s in SIDES}
        rps = {s: cell.median(s, "rps") for s in SIDES}
        added = {s: cell.median(s, "p50_ms") - cell.direct.p50_ms for s in SIDES}
        chunks = stream_chunks(cell.scenario)
        per_chunk = {s: (cpu[s] / chunks if chunks and cpu[s] is not None else None) for s in SIDES}
        others = [m.cpu_pct.get("other", 0) for measures in cell.runs.values() for m in measures]
        lines.append(
            f"| {name} | {c} | {rb._fmt(cpu['change'], 0)} | {rb._fmt(cpu['baseline'], 0)} | {_ratio(cpu['change'], cpu['baseline'])} "
            f"| {' '.join(f'{r:.2f}' for r in cell.cpu_ratios()) or '-'} "
            f"| {rps['change']:,.0f} | {rps['baseline']:,.0f} | {_ratio(rps['change'], rps['baseline'])} "
            f"| {added['change']:.2f} | {added['baseline']:.2f} "
            f"| {rb._fmt(per_chunk['change'], 1)} | {rb._fmt(per_chunk['baseline'], 1)} | {_ratio(per_chunk['change'], per_chunk['baseline'])} "
            f"| {max(others, default=0):.0f} |"
        )
    return "\n".join(lines)


def side_lines(sides: dict[str, Side]) -> list[str]:
    change, baseline = sides["change"], sides["baseline"]
    lines = [f"- **{side.label} answered {side.failed_warmups} warm-up request(s) wrongly**: its RSS figures are not comparable"
             for side in (change, baseline) if side.failed_warmups]
    for kind in sorted(change.fresh_rss.keys() & baseline.fresh_rss.keys()):
        a, b = change.fresh_rss[kind], baseline.fresh_rss[kind]
        lines.append(f"- RSS idle of the {kind} proxy (fresh, 0.5 s after its first 200 on /health, as `measure_memory` "
                     f"reads it): change **{a:.1f} MB**, baseline {b:.1f} MB, ratio **{_ratio(a, b)}**")
    for kind in sorted(change.idle_rss.keys() & baseline.idle_rss.keys()):
        a, b = change.idle_rss[kind], baseline.idle_rss[kind]
        lines.append(f"- Idle RSS of the {kind} proxy (after start-up and one request of each scenario of its kind): "
                     f"change **{a:.1f} MB**, baseline {b:.1f} MB, ratio **{_ratio(a, b)}**")
    for kind in sorted(change.loaded_rss.keys() & baseline.loaded_rss.keys()):
        a, b = change.loaded_rss[kind], baseline.loaded_rss[kind]
        lines.append(f"- RSS of the {kind} proxy after its load runs: change {a:.1f} MB, baseline {b:.1f} MB, ratio {_ratio(a, b)} (info)")
    if change.startup and baseline.startup:
        a, b = min(change.startup), min(baseline.startup)
        lines.append(
            f"- Start-up to the first 200 on /health, best of {len(change.startup)} interleaved: change **{a * 1000:.0f} ms**, "
            f"baseline {b * 1000:.0f} ms, ratio **{_ratio(a, b)}** (medians {statistics.median(change.startup) * 1000:.0f} / "
            f"{statistics.median(baseline.startup) * 1000:.0f} ms)"
        )
    return lines


def header_lines(bench: rb.Bench, sides: dict[str, Side], command: str) -> list[str]:
    args = bench.args
    return [
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {rb.machine_text()}",
        f"- {rb.python_text(bench.python)} for both proxies, the fake upstream and the built-in generator",
        f"- Load generator: {rb.loadgen_text(bench)}",
        (f"- change: **{sides['change'].commit}** ({args.change if args.change else 'the work tree'}); "
         f"baseline: **{sides['baseline'].commit}** ({args.baseline})"),
        f"- Command: `{command}`",
        (f"- {args.rounds} round(s) per row, each side once per round, first side alternating; "
         f"{args.duration:g} s per run after a {args.warmup:g} s warm-up; load average at the start: {bench.loadavg_at_start}"),
    ]


NOTES = """\
How to read it: every figure of a side is the median over its rounds; "ratio" is change / baseline
(below 1: the change uses less CPU, or, for rps, is slower). "CPU ratio per round" is the same ratio
for each round's pair of runs: when these disagree by more than the effect, the run was too noisy to
tell. "added p50" is the side's p50 minus the direct path's (measured once per row). "CPU us/chunk" is
CPU per request divided by the stream's number of text chunks (streams only). "other CPU% max" is the
most CPU (100 = one core) that processes other than ours used during any run of the row."""


# =============================================================================================
# The whole run
# =============================================================================================


def run(bench: rb.Bench, scenarios: dict[str, rb.Scenario], wanted: list[str], concurrency: tuple[int, ...], command: str, began: float) -> int:
    args = bench.args
    try:
        sides = {
            "change": Side("change", materialise(args.change, bench.workdir / "change") if args.change else rb.ROOT, describe(args.change)),
            "baseline": Side("baseline", materialise(args.baseline, bench.workdir / "baseline"), describe(args.baseline)),
        }
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        rb.progress(f"--baseline/--change: {error}")
        return 2
    selected = [scenarios[name] for name in wanted if name in scenarios]
    kinds = sorted({s.proxy_kind for s in selected} | {"translate"})
    bench.upstream = rb.start_upstream(bench.python)
    failures: dict[str, str] = {}
    try:
        for side in sides.values():  # a throw-away start of each: fills the bytecode cache, finds a broken tree early
            rb.stop(start(bench, side, "translate").process)
        for side in sides.values():
            for kind in kinds:
                side.proxies[kind] = start(bench, side, kind)
            for name, problem in warm_and_check(bench, side, scenarios, selected).items():
                failures.setdefault(name, problem)
    except (RuntimeError, TimeoutError, EOFError) as error:
        rb.progress(f"cannot start a proxy: {error}")
        return 1

    cells = [Cell(s, c) for s in selected for c in concurrency if s.concurrency is None or c in s.concurrency]
    rb.progress(f"change {sides['change'].commit} vs baseline {sides['baseline'].commit}: {len(cells)} rows x "
                f"(1 direct + {2 * args.rounds}) runs, {args.duration:g} s each")
    for index, cell in enumerate(cells, 1):
        where = f"[{index}/{len(cells)}] {cell.scenario.name} c={cell.concurrency}"
        if cell.scenario.name in failures:
            cell.failure = failures[cell.scenario.name]
            rb.progress(f"{where}: skipped ({cell.failure})")
            continue
        try:
            measure_cell(bench, sides, cell, args.rounds)
        except (RuntimeError, TimeoutError, EOFError) as error:
            cell.failure = str(error)[:200]
            rb.progress(f"{where}: failed: {cell.failure}")
            continue
        cpu = {s: cell.median(s, "cpu_us") for s in SIDES}
        rb.progress(f"{where}: CPU us/req change {rb._fmt(cpu['change'], 0)} baseline {rb._fmt(cpu['baseline'], 0)} "
                    f"(ratio {_ratio(cpu['change'], cpu['baseline'])}; per round {' '.join(f'{r:.2f}' for r in cell.cpu_ratios())})")
    for side in sides.values():
        for kind, proxy in side.proxies.items():
            side.loaded_rss[kind] = rb.rss_mb(proxy.pids())
            rb.stop(proxy.process)

    extra_lines: list[str] = []
    try:
        rb.progress("start-up time ...")
        measure_startup(bench, sides)
    except (RuntimeError, TimeoutError, EOFError) as error:
        extra_lines.append(f"- Start-up: failed: {error}")
    extra_lines = side_lines(sides) + extra_lines
    skipped = [what for name, what in (("memory", f"RSS with {rb.OPEN_STREAMS} open streams"), ("workers", "`--workers 2`")) if name in wanted]
    if skipped:
        extra_lines.append(f"- Not run with --baseline: {', '.join(skipped)}; run without --baseline for them")
    others = [m.cpu_pct.get("other", 0) for cell in cells for runs in cell.runs.values() for m in runs]
    if others and max(others) > 15:
        extra_lines.append(f"- **Noise:** other processes used up to {max(others):.0f}% of a core during the runs "
                           f"(median {statistics.median(others):.0f}%); the interleaving spreads it over both sides, "
                           f"but compare the per-round ratios before trusting a small difference")

    elapsed = time.monotonic() - began
    head = header_lines(bench, sides, command)
    report = "\n".join([*head, "", table(cells), "", *extra_lines])
    print(report)
    rb.progress(f"done in {elapsed:.0f} s")
    if args.write:
        Path(args.write).write_text("\n".join([
            f"# Benchmark comparison: {sides['change'].commit} vs {sides['baseline'].commit}",
            "",
            report,
            f"- Wall time of the run: {elapsed:.0f} s",
            "- Proxy settings: " + ", ".join(f"{k}={v}" for k, v in rb.PROXY_SETTINGS.items() if not k.startswith("PYTHON")),
            "",
            NOTES,
            "",
        ]))
        rb.progress(f"wrote {args.write}")
    return 0
