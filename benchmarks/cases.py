"""Our own figures, one named case each. A case whose feature has not landed says so, with the reason.

Every case returns a :class:`CaseResult`: ``ok`` with its figures, ``not available yet`` (the feature is
missing: the reason says what was looked for) or ``failed`` (the feature is there but the measurement broke).
"""

from __future__ import annotations

from collections.abc import Callable

from .caseapi import (
    AVAILABLE,
    FAILED,
    MISSING,
    CaseContext,
    CaseResult,
    Figures,
    has_command,
    migrated,
    migrations,
    pgmig_argv,
    probe,
    say,
    timed,
)
from .paths import OWN_BIN, PROBES, VENV_BIN, WORK
from .plugin_case import pytest_plugin_case
from .timing import Run, clean_env, median, run_commands
from .tools import FlaskMigrate, Target


# -- cases -----------------------------------------------------------------------------------------------------
def startup_floor(ctx: CaseContext) -> CaseResult:
    """Python start-up floors with the project's interpreter."""
    python = str(OWN_BIN / "python")
    floors = {
        "python_bare": [python, "-c", "pass"],
        "import_psycopg": [python, "-c", "import psycopg"],
        "import_flask_stack": [python, "-c", "import flask, flask_sqlalchemy, sqlalchemy, psycopg"],
    }
    samples: dict[str, list[float]] = {k: [] for k in floors}
    for _ in range(max(ctx.repeat, 5)):
        for key, argv in floors.items():
            run = timed(ctx, f"floor-{key}", argv)
            if run.ok:
                samples[key].append(run.seconds)
    return CaseResult(
        "startup-floor",
        AVAILABLE,
        "python -c 'import ...' wall time (project venv)",
        {k: median(v) for k, v in samples.items()},
    )


def status_wall(ctx: CaseContext) -> CaseResult:
    """pgmig status, flask db status (ours) and flask db current (Flask-Migrate) at 1000 up-to-date migrations."""
    n = 1000
    database = "pgmig_bench_case_status"
    directory = migrated(ctx, database, n)
    ours_env = clean_env(
        {
            "PYTHONPATH": str(PROBES),
            "BENCH_SQLALCHEMY_URL": ctx.server.url_for(database, "postgresql+psycopg"),
            "BENCH_MIGRATIONS_DIR": str(directory),
        }
    )
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "pgmig_status": (pgmig_argv(ctx, database, directory, "status"), clean_env()),
        "flask_db_status": (
            [str(OWN_BIN / "flask"), "--app", "pgmig_app:create_app", "db", "status"],
            ours_env,
        ),
    }
    fm = FlaskMigrate()
    fm_target = Target(WORK / "cases" / "flask-migrate-n1000", "pgmig_bench_case_fm", ctx.server, n)
    reason = ""
    if fm.missing() is None:
        fm.prepare(fm_target)
        ctx.server.fresh(fm_target.database)
        setup = run_commands(
            fm.commands("apply", fm_target),
            cwd=fm_target.root,
            env=fm.env(fm_target),
            log=WORK / "logs" / "case-status-fm-setup.log",
            timeout=ctx.timeout,
        )
        if setup.ok:
            commands["flask_migrate_current"] = (fm.commands("status", fm_target)[0], fm.env(fm_target))
    else:
        reason = f"Flask-Migrate skipped: {fm.missing()}"
    samples: dict[str, list[float]] = {k: [] for k in commands}
    try:
        for _ in range(ctx.repeat):
            for key, (argv, env) in commands.items():
                run = timed(ctx, f"status-{key}", argv, env)
                if run.ok:
                    samples[key].append(run.seconds)
    finally:
        ctx.server.drop(database)
        ctx.server.drop(fm_target.database)
    figures: Figures = {k: median(v) for k, v in samples.items()}
    return CaseResult("status", AVAILABLE, f"status wall time at N={n}, up to date", figures, reason)


def guard(ctx: CaseContext) -> CaseResult:
    """The startup guard's cost inside app creation, in-process, at 1000 migrations (fresh process per sample)."""
    n = 1000
    description = (
        f"create_app() with PGMIG_GUARD='error' minus with 'off', in-process, N={n}, database current"
    )
    database = "pgmig_bench_case_guard"
    directory = migrations(n)

    def env(mode: str) -> dict[str, str]:
        return clean_env(
            {
                "PYTHONPATH": str(PROBES),
                "BENCH_PGMIG_GUARD": mode,
                "BENCH_MIGRATIONS_DIR": str(directory),
                "BENCH_SQLALCHEMY_URL": ctx.server.url_for(database, "postgresql+psycopg"),
            }
        )

    python = OWN_BIN / "python"
    try:
        ctx.server.fresh(database)  # nothing applied yet: a working guard must refuse to boot
        refused = probe(python, "guard_probe.py", env("error"), ctx)
        if refused["outcome"] != "PendingMigrationsError":
            return CaseResult(
                "guard",
                MISSING,
                description,
                reason=(
                    f"PGMIG_GUARD='error' did not refuse an app whose {n} migrations are pending "
                    f"(create_app() ended with: {refused['outcome']})"
                ),
            )
        migrated(ctx, database, n)
        samples: dict[str, list[float]] = {"off": [], "error": []}
        for _ in range(max(ctx.repeat, 7)):
            for mode in ("off", "error"):
                result = probe(python, "guard_probe.py", env(mode), ctx)
                if result["outcome"] != "created":
                    return CaseResult(
                        "guard",
                        FAILED,
                        description,
                        reason=f"guard={mode} on a current database: {result['outcome']}",
                    )
                samples[mode].append(float(str(result["seconds"])))
    finally:
        ctx.server.drop(database)
    off, on = median(samples["off"]), median(samples["error"])
    figures: Figures = {
        "create_app_guard_off": off,
        "create_app_guard_error": on,
        "guard_cost": None if off is None or on is None else on - off,
    }
    return CaseResult("guard", AVAILABLE, description, figures)


def flask_migrate_check(ctx: CaseContext) -> CaseResult:
    """Flask-Migrate's in-process 'is the database current?' check at 1000 migrations (the guard's peer)."""
    n = 1000
    description = f"Alembic heads vs database heads, in-process after app creation, N={n} (peers venv)"
    fm = FlaskMigrate()
    if fm.missing():
        return CaseResult("flask-migrate-check", MISSING, description, reason=str(fm.missing()))
    target = Target(WORK / "cases" / "flask-migrate-n1000", "pgmig_bench_case_fmcheck", ctx.server, n)
    fm.prepare(target)
    samples: list[float] = []
    try:
        ctx.server.fresh(target.database)
        setup = run_commands(
            fm.commands("apply", target),
            cwd=target.root,
            env=fm.env(target),
            log=WORK / "logs" / "case-fmcheck-setup.log",
            timeout=ctx.timeout,
        )
        if not setup.ok:
            return CaseResult("flask-migrate-check", FAILED, description, reason=setup.detail)
        for _ in range(max(ctx.repeat, 5)):
            result = probe(VENV_BIN / "python", "fm_check_probe.py", fm.env(target), ctx)
            samples.append(float(str(result["seconds"])))
    finally:
        ctx.server.drop(target.database)
    return CaseResult("flask-migrate-check", AVAILABLE, description, {"check": median(samples)})


def check(ctx: CaseContext) -> CaseResult:
    """pgmig check (offline lint) on 1000 files."""
    n = 1000
    description = f"pgmig check (offline: names, sections, syntax, lint) on {n} files"
    if not has_command("check"):
        return CaseResult("check", MISSING, description, reason="pgmig has no 'check' command")
    directory = migrations(n)
    argv = [str(OWN_BIN / "pgmig"), "--directory", str(directory), "check"]
    runs = [timed(ctx, "check", argv) for _ in range(ctx.repeat)]
    failed = [r.detail for r in runs if not r.ok]
    if failed:
        return CaseResult("check", FAILED, description, reason=failed[0])
    return CaseResult("check", AVAILABLE, description, {"check": median([r.seconds for r in runs])})


def verify(ctx: CaseContext) -> CaseResult:
    """pgmig verify (up -> down -> up with catalog snapshots on a scratch database): time per migration."""
    n = 100
    description = f"pgmig verify on a scratch database, N={n}: wall time / N"
    if not has_command("verify"):
        return CaseResult("verify", MISSING, description, reason="pgmig has no 'verify' command")
    database = "pgmig_bench_case_verify"
    directory = migrations(n)
    runs: list[Run] = []
    try:
        for _ in range(ctx.repeat):
            ctx.server.fresh(database)
            runs.append(timed(ctx, "verify", pgmig_argv(ctx, database, directory, "verify")))
    finally:
        ctx.server.drop(database)
    failed = [r.detail for r in runs if not r.ok]
    if failed:
        return CaseResult("verify", FAILED, description, reason=failed[0])
    total = median([r.seconds for r in runs])
    return CaseResult(
        "verify",
        AVAILABLE,
        description,
        {"verify_total": total, "per_migration": None if total is None else total / n},
    )


def memory(ctx: CaseContext) -> CaseResult:
    """Peak memory (max RSS) and wall time of pgmig migrate applying 5000 migrations."""
    n = 5000
    database = "pgmig_bench_case_memory"
    directory = migrations(n)
    runs: list[Run] = []
    try:
        for _ in range(1):  # peak memory needs no median; 5000 migrations take minutes under load
            ctx.server.fresh(database)
            ctx.server.checkpoint()
            runs.append(timed(ctx, "memory", pgmig_argv(ctx, database, directory, "migrate")))
            say(f"  memory: {runs[-1].seconds:.2f} s, {runs[-1].max_rss_kb / 1024:.1f} MiB")
    finally:
        ctx.server.drop(database)
    failed = [r.detail for r in runs if not r.ok]
    if failed:
        return CaseResult("memory", FAILED, f"pgmig migrate, N={n}", reason=failed[0])
    return CaseResult(
        "memory",
        AVAILABLE,
        f"pgmig migrate, N={n}: peak RSS of the process",
        {
            "max_rss_mib": round(max(r.max_rss_kb for r in runs) / 1024, 1),
            "apply": median([r.seconds for r in runs]),
        },
    )


CASES: dict[str, Callable[[CaseContext], CaseResult]] = {
    "startup-floor": startup_floor,
    "status": status_wall,
    "guard": guard,
    "flask-migrate-check": flask_migrate_check,
    "pytest-plugin": pytest_plugin_case,
    "check": check,
    "verify": verify,
    "memory": memory,
}


def run_cases(names: list[str], ctx: CaseContext) -> dict[str, CaseResult]:
    """Run the named cases in order; an exception becomes a failed case with its message."""
    results: dict[str, CaseResult] = {}
    for name in names:
        say(f"== case {name}")
        try:
            result = CASES[name](ctx)
        except Exception as exc:  # one broken case must not lose the others' figures
            result = CaseResult(
                name, FAILED, (CASES[name].__doc__ or "").strip(), reason=f"{type(exc).__name__}: {exc}"
            )
        say(f"   {result.status}: {result.figures or result.reason}")
        results[name] = result
    return results
