"""The example app's pages and its JSON API (one blueprint)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from .models import STATUSES, Project, Tag, Task, User, db, task_tags

bp = Blueprint("tracker", __name__)


def _tasks_query() -> Any:
    # Load tags and assignees with the tasks: one query each instead of one per task in the templates.
    return db.select(Task).options(selectinload(Task.tags), selectinload(Task.assignee)).order_by(Task.id)


def _tag_names(text: str) -> list[str]:
    """Comma-separated tag names from a form or JSON, normalized and without duplicates."""
    names = [Tag.normalize(part) for part in text.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def _tags(names: list[str]) -> list[Tag]:
    """The Tag rows for names, creating the missing ones."""
    existing = {t.name: t for t in db.session.execute(db.select(Tag).where(Tag.name.in_(names))).scalars()}
    for name in names:
        if name not in existing:
            existing[name] = Tag(name=name)
            db.session.add(existing[name])
    return [existing[name] for name in names]


def _create_task(project: Project, title: str, tags: str, assignee_id: int | None) -> Task:
    title = title.strip()
    if not title:
        abort(400, description="A task needs a title.")
    if assignee_id is not None and db.session.get(User, assignee_id) is None:
        abort(400, description=f"There is no user {assignee_id}.")
    task = Task(project=project, title=title, assignee_id=assignee_id, tags=_tags(_tag_names(tags)))
    db.session.add(task)
    db.session.commit()
    return task


@bp.context_processor
def template_globals() -> dict[str, Any]:
    """What every template of the blueprint may use."""
    return {"statuses": STATUSES}


# -- pages -------------------------------------------------------------------------------------------------
@bp.get("/")
def index() -> str:
    """Every project with its open and total task counts, and the tags in use."""
    open_count = func.count(Task.id).filter(Task.status != "done")
    rows = db.session.execute(
        db.select(Project, open_count, func.count(Task.id))
        .outerjoin(Task)
        .group_by(Project.id)
        .order_by(Project.name)
    ).all()
    tags = db.session.execute(
        db.select(Tag.name, func.count(task_tags.c.task_id))
        .join(task_tags)
        .group_by(Tag.name)
        .order_by(Tag.name)
    ).all()
    return render_template("index.html", projects=rows, tags=tags)


@bp.post("/projects")
def create_project() -> Response:
    """Create a project from the form on the index page."""
    name = request.form.get("name", "").strip()
    if not name:
        abort(400, description="A project needs a name.")
    if db.session.execute(db.select(Project).filter_by(name=name)).scalar() is not None:
        abort(409, description=f"A project named '{name}' exists already.")
    project = Project(name=name)
    db.session.add(project)
    db.session.commit()
    return redirect(url_for("tracker.project", project_id=project.id))


@bp.get("/projects/<int:project_id>")
def project(project_id: int) -> str:
    """One project's tasks, optionally only those with one status (``?status=doing``)."""
    project = db.get_or_404(Project, project_id)
    status = request.args.get("status")
    query = _tasks_query().where(Task.project_id == project.id)
    if status in STATUSES:
        query = query.where(Task.status == status)
    tasks = db.session.execute(query).scalars().all()
    users = db.session.execute(db.select(User).order_by(User.name)).scalars().all()
    return render_template("project.html", project=project, tasks=tasks, users=users, status=status)


@bp.post("/projects/<int:project_id>/tasks")
def add_task(project_id: int) -> Response:
    """Add a task from the form on the project page."""
    project = db.get_or_404(Project, project_id)
    assignee = request.form.get("assignee_id", type=int)
    _create_task(project, request.form.get("title", ""), request.form.get("tags", ""), assignee)
    return redirect(url_for("tracker.project", project_id=project.id))


@bp.post("/tasks/<int:task_id>/status")
def set_status(task_id: int) -> Response:
    """Move a task to another status (the trigger from 20260203090000 bumps its updated_at)."""
    task = db.get_or_404(Task, task_id)
    status = request.form.get("status", "")
    if status not in STATUSES:
        abort(400, description=f"'{status}' is not a status; use one of {', '.join(STATUSES)}.")
    task.status = status
    db.session.commit()
    return redirect(url_for("tracker.project", project_id=task.project_id))


@bp.get("/tags/<name>")
def tag(name: str) -> str:
    """Every task with one tag, across projects."""
    tag = db.first_or_404(db.select(Tag).filter_by(name=Tag.normalize(name)))
    tasks = db.session.execute(_tasks_query().join(Task.tags).where(Tag.id == tag.id)).scalars().all()
    return render_template("tag.html", tag=tag, tasks=tasks)


# -- JSON API ----------------------------------------------------------------------------------------------
@bp.get("/api/projects")
def api_projects() -> Response:
    """Projects with their open task counts."""
    projects = db.session.execute(db.select(Project).order_by(Project.id)).scalars()
    return jsonify([{"id": p.id, "name": p.name, "open_tasks": p.open_tasks()} for p in projects])


@bp.get("/api/tasks")
def api_tasks() -> Response:
    """Tasks, filtered by ``?project=ID``, ``?status=NAME`` and ``?tag=NAME`` (each optional)."""
    query = _tasks_query()
    if (project_id := request.args.get("project", type=int)) is not None:
        query = query.where(Task.project_id == project_id)
    if (status := request.args.get("status")) is not None:
        if status not in STATUSES:
            abort(400, description=f"'{status}' is not a status; use one of {', '.join(STATUSES)}.")
        query = query.where(Task.status == status)
    if (tag_name := request.args.get("tag")) is not None:
        query = query.join(Task.tags).where(Tag.name == Tag.normalize(tag_name))
    return jsonify([task.to_json() for task in db.session.execute(query).scalars()])


@bp.post("/api/tasks")
def api_create_task() -> tuple[Response, int]:
    """Create a task from JSON: ``{"project_id": 1, "title": "...", "tags": ["a"], "assignee_id": null}``."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="Send a JSON object.")
    project = db.session.get(Project, data.get("project_id"))
    if project is None:
        abort(400, description=f"There is no project {data.get('project_id')!r}.")
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        abort(400, description="'tags' must be a list of names.")
    assignee = data.get("assignee_id")
    if assignee is not None and not isinstance(assignee, int):
        abort(400, description="'assignee_id' must be a user id or null.")
    task = _create_task(project, str(data.get("title") or ""), ",".join(tags), assignee)
    return jsonify(task.to_json()), 201


@bp.errorhandler(400)
@bp.errorhandler(409)
def bad_request(error: Any) -> tuple[Any, int]:
    """Errors of the API as JSON, of the pages as a short text."""
    if request.path.startswith("/api/"):
        return jsonify({"error": error.description}), error.code
    return render_template("error.html", error=error), error.code
