"""Turn one run into results: JSON (everything), Markdown (the tables and the targets) and the docs page.

The JSON is the source of truth; the Markdown and ``docs/benchmarks.rst`` are rendered from it, so
``python -m benchmarks.report`` can re-render them from a saved ``results.json`` without re-measuring.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .paths import REPO, RESULTS

Json = dict[str, Any]
STEP_TITLES = {"apply": "apply all", "status": "status when up to date", "rollback": "roll back all"}
DOCS_PAGE = REPO / "docs" / "benchmarks.rst"


def _median(data: Json, n: int, tool: str, step: str) -> float | None:
    value = data["compare"].get(str(n), {}).get(tool, {}).get(step, {}).get("median_s")
    return float(value) if value is not None else None


def _figure(data: Json, case: str, key: str) -> float | None:
    value = data["cases"].get(case, {}).get("figures", {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _ratio(value: float | None, floor: float | None) -> str:
    return "" if value is None or not floor else f" ({value / floor:.2f}×)"


def _transaction(data: Json, name: str) -> str:
    """How a tool applies by default: 'each' migration in its own transaction, or all in 'one'."""
    from .tools import BY_NAME  # older results.json files did not record it

    meta = data["tools"].get(name, {})
    return str(meta.get("transaction") or (BY_NAME[name].transaction if name in BY_NAME else "each"))


def _versus_peers(data: Json, n: int, step: str, ours_name: str, mode: str | None) -> tuple[str, str, str]:
    """Whether ours beats every installed peer at one step (only peers with the same transaction mode)."""
    scope = {None: "every peer", "each": "every peer with a transaction per migration",
             "one": "every peer that runs all in one transaction"}[mode]  # fmt: skip
    title = f"{ours_name} {step} faster than {scope} (N={n})"
    ours = _median(data, n, ours_name, step)
    measured = {
        name: value
        for name, meta in data["tools"].items()
        if meta["kind"] == "peer" and not meta.get("missing") and mode in (None, _transaction(data, name))
        for value in [_median(data, n, name, step)]
        if value is not None
    }
    if ours is None or not measured:
        return title, "–", "not measured"
    fastest = min(measured, key=lambda k: measured[k])
    beaten_by = [k for k, v in measured.items() if v <= ours]
    text = f"{_fmt(ours)}; fastest peer {fastest} {_fmt(measured[fastest])}"
    return title, text, f"MISSED ({', '.join(beaten_by)} faster)" if beaten_by else "met"


def _paired_ratios(data: Json, n: int, ours: str, floor: str) -> list[float]:
    """``ours`` / ``floor`` apply times round by round (the two ran back to back), when no run failed."""
    steps = [data["compare"].get(str(n), {}).get(tool, {}).get("apply") or {} for tool in (ours, floor)]
    if any(step.get("failures") or not step.get("runs_s") for step in steps):
        return []
    mine, floors = steps[0]["runs_s"], steps[1]["runs_s"]
    return [a / b for a, b in zip(mine, floors, strict=False)] if len(mine) == len(floors) else []


# -- targets ---------------------------------------------------------------------------------------------------
def targets(data: Json) -> list[tuple[str, str, str]]:
    """Each target of issue 9 as (target, measured, verdict); verdict is 'met', 'MISSED' or 'not measured'."""
    ns = sorted(int(n) for n in data["compare"])
    n = 1000 if 1000 in ns else (ns[-1] if ns else 0)
    rows: list[tuple[str, str, str]] = []

    def ratio_row(title: str, ours: str, floor: str, limit: float) -> None:
        a, b = _median(data, n, ours, "apply"), _median(data, n, floor, "apply")
        if a is None or b is None:
            rows.append((title, "–", "not measured"))
        else:
            paired = _paired_ratios(data, n, ours, floor)
            rounds = f"; round by round {', '.join(f'{r:.2f}' for r in paired)}" if paired else ""
            rows.append(
                (title, f"{a / b:.2f}× ({_fmt(a)} vs {_fmt(b)}{rounds})", "met" if a / b <= limit else "MISSED")
            )

    ratio_row(f"apply ≤ 1.10× psql one transaction per file (N={n})", "pgmig", "psql-each", 1.10)
    ratio_row(f"--atomic ≤ 1.10× psql all in one transaction (N={n})", "pgmig-atomic", "psql", 1.10)
    for step in ("apply", "rollback"):
        rows.append(_versus_peers(data, n, step, "pgmig", None))
    # like for like: Alembic, Flask-Migrate and node-pg-migrate apply everything in one transaction by default
    for step in ("apply", "rollback"):
        rows.append(_versus_peers(data, n, step, "pgmig", "each"))
        rows.append(_versus_peers(data, n, step, "pgmig-atomic", "one"))
    # the status case runs beside the import floor (same minutes, same load); the comparison's median otherwise
    status = _figure(data, "status", "pgmig_status") or _median(data, 1000, "pgmig", "status")
    floor = _figure(data, "startup-floor", "import_psycopg")
    if status is None or floor is None:
        rows.append(("pgmig status ≤ import psycopg + 0.1 s (N=1000)", "–", "not measured"))
    else:
        verdict = "met" if status <= floor + 0.1 else "MISSED"
        rows.append(
            (
                "pgmig status ≤ import psycopg + 0.1 s (N=1000)",
                f"{_fmt(status)} vs {_fmt(floor)} + 0.1 s",
                verdict,
            )
        )
    fm_current = _figure(data, "status", "flask_migrate_current")
    ours_status = _figure(data, "status", "pgmig_status")
    if fm_current and ours_status:
        text = f"{fm_current / ours_status:.1f}× ({_fmt(ours_status)} vs {_fmt(fm_current)})"
        rows.append(
            (
                "pgmig status about 4× faster than flask db current (N=1000)",
                text,
                "met" if fm_current / ours_status >= 3.5 else "MISSED",
            )
        )
    guard = _figure(data, "guard", "guard_cost")
    if guard is None:
        rows.append(("startup guard ≤ 20 ms in-process (N=1000)", "–", "not measured"))
    else:
        rows.append(
            (
                "startup guard ≤ 20 ms in-process (N=1000)",
                f"{guard * 1000:.1f} ms",
                "met" if guard <= 0.020 else "MISSED",
            )
        )
    fresh = _figure(data, "pytest-plugin", "fresh_database")
    rows.append(
        (
            "fresh migrated test database ≤ 0.3 s (N=1000)",
            _fmt(fresh),
            "not measured" if fresh is None else ("met" if fresh <= 0.3 else "MISSED"),
        )
    )
    per_migration = [(n, t / n) for n in ns if (t := _median(data, n, "pgmig", "apply"))]
    if len(per_migration) >= 2:
        # the two largest N: at small N the start-up (interpreter, imports) is most of the time, not the migrations
        (small, a), (large, b) = per_migration[-2:]
        growth = b / a
        text = "per migration " + ", ".join(f"{t * 1000:.2f} ms at N={n}" for n, t in per_migration)
        text += f"; {growth:.2f}× from N={small} to N={large}"
        # The server's own cost per table grows with the number of tables in the database (catalogs, one
        # directory of files): the same SQL through psql grows too. What is pgmig's is the growth beyond it.
        floor_small = _median(data, small, "psql-each", "apply")
        floor_large = _median(data, large, "psql-each", "apply")
        if floor_small and floor_large:
            floor_growth = (floor_large / large) / (floor_small / small)
            text += f", psql one transaction per file {floor_growth:.2f}×: {growth / floor_growth:.2f}× relative"
            growth /= floor_growth
        big = _figure(data, "memory", "apply")
        if big:
            text += f" ({big / 5000 * 1000:.2f} ms at N=5000 in the memory case)"
        rows.append(
            (
                "apply cost linear in N (per-migration cost, relative to psql one transaction per file, grows ≤ 1.3× "
                "between the two largest N)",
                text,
                "met" if growth <= 1.3 else "MISSED",
            )
        )
    return rows


# -- Markdown --------------------------------------------------------------------------------------------------
def _compare_table(data: Json, n: int) -> list[str]:
    floor = {step: _median(data, n, "psql", step) for step in STEP_TITLES}
    lines = [
        f"### N = {n}",
        "",
        "| tool | version | " + " | ".join(STEP_TITLES.values()) + " |",
        "|---|---|---:|---:|---:|",
    ]
    for name, meta in data["tools"].items():
        per_step = data["compare"].get(str(n), {}).get(name)
        if meta.get("missing"):
            lines.append(f"| {meta['label']} | not installed | – | – | – |")
            continue
        if per_step is None:
            continue
        cells = []
        for step in STEP_TITLES:
            result = per_step.get(step)
            if result is None:
                cells.append("–")
            elif result["median_s"] is None:
                cells.append("failed")
            else:
                runs = len(result["runs_s"])
                extra = (
                    f" [{runs} run{'s' if runs != 1 else ''}]" if runs < data["settings"]["repeat"] else ""
                )
                cells.append(_fmt(result["median_s"]) + _ratio(result["median_s"], floor[step]) + extra)
        lines.append(f"| {meta['label']} | {meta['version']} | " + " | ".join(cells) + " |")
    failures = [
        f"- {name} {step}: {f}"
        for name, per_step in data["compare"].get(str(n), {}).items()
        for step, result in per_step.items()
        for f in result["failures"][:1]
    ]
    return [*lines, "", *(["Failures:", "", *failures, ""] if failures else [])]


def markdown(data: Json) -> str:
    """The results as Markdown."""
    machine, settings = data["machine"], data["settings"]
    out = [
        "# flask-pgmig benchmarks",
        "",
        f"Run {data['started']} → {data['finished']} (UTC) with `{settings['command']}`.",
        "",
        f"- Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}; {machine['os']}.",
        f"- Load: {machine['load']}. {settings.get('load_note', '')}",
        f"- PostgreSQL: {data['server']['version']} ({data['server']['kind']}), loopback TCP.",
        f"- Python {machine['python']}; every figure is the median of {settings['repeat']} runs on fresh "
        "databases, tools alternating; ratios in brackets are to psql all in one transaction (the floor).",
        "",
        "## Side by side",
        "",
    ]
    for n in sorted(int(k) for k in data["compare"]):
        out += _compare_table(data, n)
    out += ["## Targets (issue 9)", "", "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t} | {m} | {v} |" for t, m, v in targets(data)]
    out += ["", "## Our own figures", "", "| case | status | figures | note |", "|---|---|---|---|"]
    for name, case in data["cases"].items():
        figures = ", ".join(f"{k} = {_case_value(k, v)}" for k, v in case["figures"].items())
        out.append(
            f"| {name}: {case['description']} | {case['status']} | {figures or '–'} | {case['reason']} |"
        )
    skipped = data.get("install_notes", {})
    if skipped:
        out += ["", "## Not installed", ""] + [f"- {group}: {note}" for group, note in skipped.items()]
    if data.get("analysis"):
        out += ["", "## Analysis", "", data["analysis"].strip()]
    return "\n".join(out) + "\n"


def _case_value(key: str, value: object) -> str:
    if isinstance(value, float) and not key.endswith(("_mib", "_ratio")):
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    return str(value)


# -- reST (the docs page) --------------------------------------------------------------------------------------
def _rst_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        out.append(f"   * - {row[0]}")
        out += [f"     - {cell}" for cell in row[1:]]
    return [*out, ""]


def rst(data: Json) -> str:
    """The docs page: how to run, then the latest results (rendered from the Markdown tables' data)."""
    machine, settings = data["machine"], data["settings"]
    out = [
        "Benchmarks",
        "==========",
        "",
        "flask-pgmig is measured side by side with the migration tools people use with PostgreSQL (Alembic,",
        "Flask-Migrate, dbmate, node-pg-migrate, yoyo, sqitch) and against the floor: ``psql`` running the same SQL",
        "files. Every tool applies the same N migrations (each creates one small table), reports its status when",
        "up to date, and rolls everything back, on a fresh database each time, tools alternating, median of the",
        "runs. Timings are never asserted in the test suite; they live here.",
        "",
        "Running them",
        "------------",
        "",
        "From a checkout with the project's virtual environment::",
        "",
        "    .venv/bin/python -m benchmarks              # installs the peers, N = 100 and 1000, about 15 minutes",
        "    .venv/bin/python -m benchmarks --big        # adds N = 5000",
        "    .venv/bin/python -m benchmarks --quick      # N = 20, one run: checks the harness works",
        "",
        "The peers are installed under ``benchmarks/.peers/`` (Alembic, Flask-Migrate and yoyo from PyPI into their",
        "own venv; dbmate and node-pg-migrate from the npm registry; sqitch from apt); a peer that cannot be",
        "installed is skipped with a note. ``--tools`` and ``--cases`` pick a subset, ``--server URL`` uses an",
        "existing PostgreSQL (databases named ``pgmig_bench_*``), ``--embedded`` a dedicated one under",
        "``benchmarks/work/``. Results go to ``benchmarks/results/results.md`` and ``results.json`` and to this",
        "page. See ``benchmarks/README.md`` for every option.",
        "",
        "Latest results",
        "--------------",
        "",
        f"Run {data['started']} to {data['finished']} (UTC). Machine: {machine['cpu']}, {machine['cores']} cores,",
        f"{machine['memory']}; {machine['os']}; Python {machine['python']}; PostgreSQL {data['server']['version']}",
        f"({data['server']['kind']}) over loopback TCP. Load while measuring: {machine['load']}.",
        f"{settings.get('load_note', '')}",
        "",
        f"Median of {settings['repeat']} runs; in brackets the ratio to psql running all files in one transaction.",
        "",
    ]
    for n in sorted(int(k) for k in data["compare"]):
        title = f"N = {n}"
        out += [title, "~" * len(title), ""]
        rows = []
        floor = {step: _median(data, n, "psql", step) for step in STEP_TITLES}
        for name, meta in data["tools"].items():
            per_step = data["compare"].get(str(n), {}).get(name)
            if meta.get("missing") or per_step is None:
                continue
            cells = []
            for step in STEP_TITLES:
                value = per_step.get(step, {}).get("median_s") if step in per_step else None
                cells.append(
                    "–"
                    if step not in per_step
                    else ("failed" if value is None else _fmt(value) + _ratio(value, floor[step]))
                )
            rows.append([meta["label"], meta["version"], *cells])
        out += _rst_table(["tool", "version", *STEP_TITLES.values()], rows)
    out += ["Targets", "~~~~~~~", ""]
    out += _rst_table(["target", "measured", "verdict"], [list(t) for t in targets(data)])
    out += ["Our own figures", "~~~~~~~~~~~~~~~", ""]
    case_rows = [
        [
            f"{name}: {case['description']}",
            case["status"],
            ", ".join(f"{k} = {_case_value(k, v)}" for k, v in case["figures"].items()) or "–",
            case["reason"] or "–",
        ]
        for name, case in data["cases"].items()
    ]
    out += _rst_table(["case", "status", "figures", "note"], case_rows)
    if data.get("install_notes"):
        out += ["Not installed: " + "; ".join(f"{k}: {v}" for k, v in data["install_notes"].items()), ""]
    if data.get("analysis"):
        out += ["Analysis", "~~~~~~~~", "", data["analysis"].strip(), ""]
    return "\n".join(out)


def write_all(data: Json, results_dir: Path = RESULTS, docs: bool = True) -> list[Path]:
    """Write results.json, results.md and (optionally) the docs page; return the paths written.

    ``analysis.txt`` beside the results (hand-written after profiling a missed target) is included in both.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    analysis = results_dir / "analysis.txt"
    if analysis.is_file():
        data = {**data, "analysis": analysis.read_text()}
    written = [results_dir / "results.json", results_dir / "results.md"]
    written[0].write_text(json.dumps(data, indent=2) + "\n")
    written[1].write_text(markdown(data))
    if docs:
        DOCS_PAGE.parent.mkdir(parents=True, exist_ok=True)
        DOCS_PAGE.write_text(rst(data))
        written.append(DOCS_PAGE)
    return written


if __name__ == "__main__":  # re-render from a saved results.json: python -m benchmarks.report [path]
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "results.json"
    for path in write_all(json.loads(source.read_text()), source.parent, docs=source.parent == RESULTS):
        print(path)
