"""The example app's pages and JSON API, on a fresh migrated database per test (pytest-flask's ``client``)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from example_app.models import Project, Task, db
from example_app.seed import seed


@pytest.fixture
def seeded(app: Flask) -> Flask:
    """The app with the demo data (what 'flask --app example_app seed' loads)."""
    with app.app_context():
        assert seed() is True
    return app


def test_pages_and_api_show_the_demo_data(seeded: Flask, client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Website" in page and "Mobile app" in page
    assert "design" in page  # a tag of two tasks
    assert client.get("/tags/Bug").status_code == 200
    assert client.get("/tags/nothing").status_code == 404

    data = client.get("/api/projects").get_json()
    counts = {p["name"]: p["open_tasks"] for p in data}
    assert counts == {"Website": 2, "Mobile app": 2}  # 'Choose a font' is done

    blocked = client.get("/api/tasks?status=blocked").get_json()
    assert [t["title"] for t in blocked] == ["Crash on login with an empty password"]
    assert blocked[0]["tags"] == ["bug", "ios"] and blocked[0]["assignee"] == "grace@example.com"
    bugs = client.get("/api/tasks?tag=BUG").get_json()  # tag names are normalized
    assert len(bugs) == 2
    bad = client.get("/api/tasks?status=later")
    assert bad.status_code == 400 and "not a status" in bad.get_json()["error"]


def test_api_creates_a_task_and_rejects_bad_input(seeded: Flask, client: FlaskClient) -> None:
    project_id = client.get("/api/projects").get_json()[0]["id"]
    response = client.post(
        "/api/tasks", json={"project_id": project_id, "title": "Ship it", "tags": [" Release", "bug"]}
    )
    assert response.status_code == 201
    task: dict[str, Any] = response.get_json()
    assert task["status"] == "todo"  # the column default from 20260127090000
    assert task["priority"] == 2  # the column default from 20260210090000
    assert task["tags"] == ["bug", "release"]
    assert client.get(f"/api/tasks?project={project_id}&tag=release").get_json()[0]["id"] == task["id"]
    response = client.post("/api/tasks", json={"project_id": 999, "title": "x"})
    assert response.status_code == 400
    assert "no project" in response.get_json()["error"]


def test_pages_create_a_project_and_a_task_and_change_its_status(
    app: Flask, client: FlaskClient, pgmig_conn: psycopg.Connection[Any]
) -> None:
    response = client.post("/projects", data={"name": "Docs"})
    assert response.status_code == 302
    project_url = response.headers["Location"]
    project_id = int(project_url.rstrip("/").rsplit("/", 1)[1])
    client.post(f"/projects/{project_id}/tasks", data={"title": "Write the README", "tags": "docs, Docs"})
    page = client.get(project_url).get_data(as_text=True)
    assert "Write the README" in page
    row = pgmig_conn.execute(
        "SELECT id, status::text FROM tasks WHERE project_id = %s", [project_id]
    ).fetchone()
    assert row is not None and row[1] == "todo"
    pgmig_conn.execute("UPDATE tasks SET updated_at = '2000-01-01' WHERE id = %s", [row[0]])
    assert client.post(f"/tasks/{row[0]}/status", data={"status": "blocked"}).status_code == 302
    status, year = pgmig_conn.execute(
        "SELECT status::text, extract(year FROM updated_at)::int FROM tasks WHERE id = %s", [row[0]]
    ).fetchone() or (None, None)
    assert status == "blocked"
    assert year is not None and year > 2000  # the trigger from 20260203090000 set updated_at
    assert client.post("/projects", data={"name": "Docs"}).status_code == 409  # names are unique


def test_models_match_the_migrated_schema(seeded: Flask) -> None:
    """Every mapped column exists in the database the migrations built (the app never calls create_all)."""
    with seeded.app_context():
        tasks = db.session.execute(db.select(Task).order_by(Task.id)).scalars().all()
        assert len(tasks) == 5
        assert all(t.updated_at is not None for t in tasks)
        assert {t.status for t in tasks} == {"todo", "doing", "done", "blocked"}
        assert seed() is False  # the demo data goes only into an empty database
        assert db.session.execute(db.select(db.func.count(Project.id))).scalar_one() == 2
