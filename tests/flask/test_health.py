"""Readiness: ``pgmig.check()`` and the PGMIG_HEALTH_ENDPOINT blueprint (pytest-flask's ``app`` and ``client``)."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import NOWHERE, AppFactory, with_password
from flask import Flask
from flask.testing import FlaskClient
from helpers import query, tables

ENDPOINT = "/health/migrations"


def test_endpoint_503_until_migrated_then_200(app: Flask, client: FlaskClient, database_url: str) -> None:
    behind = client.get(ENDPOINT)
    assert behind.status_code == 503
    document = behind.get_json()
    assert document["status"] == "behind" and document["ok"] is False and document["error"] is None
    assert document["counts"]["pending"] == 3 and document["counts"]["applied"] == 0
    assert document["problems"][0] == {"state": "pending", "migration": "20260115093000_create_users"}
    assert tables(database_url) == set()  # the check created nothing

    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    ready = client.get(ENDPOINT)
    assert ready.status_code == 200
    assert ready.get_json() == {
        "status": "ok",
        "ok": True,
        "counts": {"applied": 3, "pending": 0, "modified": 0, "missing": 0, "failed": 0, "running": 0},
        "problems": [],
        "error": None,
    }


def test_check_object(app: Flask) -> None:
    pgmig = app.extensions["pgmig"].extension
    before = pgmig.check(app)
    assert not before and before.status == "behind" and before.http_status == 503
    assert app.test_cli_runner().invoke(args=["db", "migrate", "--to", "20260116080000"]).exit_code == 0
    with app.app_context():
        partly = pgmig.check()
    assert partly.counts["applied"] == 2 and partly.problems == (
        ("pending", "20260117120000_index_users_email"),
    )
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    after = pgmig.check(app)
    assert after and after.status == "ok" and after.http_status == 200


def test_modified_file_is_not_ready(app: Flask, client: FlaskClient) -> None:
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    path = app.extensions["pgmig"].directory() / "20260116080000_add_users_name.sql"
    path.write_text(path.read_text().replace("name text", "name varchar(200)"))
    response = client.get(ENDPOINT)
    assert response.status_code == 503
    assert response.get_json()["problems"] == [
        {"state": "modified", "migration": "20260116080000_add_users_name"}
    ]


def test_unreachable_database_is_503_without_details(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    password = "Hidden-health-pw-5150"
    nowhere = with_password(NOWHERE, password)
    app = make_app(PGMIG_DATABASE_URL=nowhere, PGMIG_HEALTH_ENDPOINT=ENDPOINT)
    with caplog.at_level(logging.WARNING):
        response = app.test_client().get(ENDPOINT)
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "error", "ok": False, "counts": {}, "problems": [], "error": "ConnectionFailed",
    }  # fmt: skip
    body = json.dumps(response.get_json())
    assert "127.0.0.1" not in body and password not in body  # readiness endpoints are often public
    logged = [r.getMessage() for r in caplog.records]
    assert any("readiness check failed: Could not connect to PostgreSQL" in m for m in logged)
    assert not any(password in m for m in logged)


def test_no_endpoint_unless_configured(make_app: AppFactory) -> None:
    app = make_app(PGMIG_DATABASE_URL=NOWHERE)
    assert app.test_client().get(ENDPOINT).status_code == 404
    assert not any(rule.endpoint.startswith("pgmig_health") for rule in app.url_map.iter_rules())


def test_history_table_unreadable_is_an_error(app: Flask, client: FlaskClient, database_url: str) -> None:
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    query(database_url, "ALTER TABLE pgmig_history RENAME COLUMN checksum TO checksum_old")
    response = client.get(ENDPOINT)
    assert response.status_code == 503 and response.get_json()["error"] == "HistoryError"
