"""PGMIG_SECRETS through the app: env, file (and its permissions), a callable, AWS Secrets Manager on moto's server."""

from __future__ import annotations

import importlib
import json
import os
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import AppFactory, with_password
from helpers import history_versions

from flask_pgmig.core.dsn import SecretsFileWarning

PASSWORD = "S3cret-from-the-vault-4242"


def rds_secret(url: str) -> dict[str, Any]:
    """The RDS JSON format for the test database (with a password: the test server trusts loopback)."""
    parts = urlsplit(url)
    return {
        "engine": "postgres",
        "username": parts.username or "postgres",
        "password": PASSWORD,
        "host": parts.hostname,
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/"),
    }


def migrate(app: Any) -> str:
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    return str(result.output)


def test_env_secret_is_read_once_until_refresh(
    make_app: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_DB", with_password(database_url, PASSWORD))
    app = make_app(PGMIG_SECRETS="env:APP_DB")
    migrate(app)
    assert history_versions(database_url)[-1] == "20260117120000"
    state = app.extensions["pgmig"]
    monkeypatch.setenv("APP_DB", "postgresql://u@elsewhere/db")
    assert PASSWORD in state.dsn()  # kept from the first read
    state.refresh()
    assert state.dsn() == "postgresql://u@elsewhere/db"
    assert PASSWORD not in repr(state) and "elsewhere" not in repr(state)


@pytest.mark.parametrize("content", ["url", "rds json"])
def test_private_secrets_file(make_app: AppFactory, database_url: str, tmp_path: Path, content: str) -> None:
    secret = tmp_path / "db_secret"
    value = (
        with_password(database_url, PASSWORD) if content == "url" else json.dumps(rds_secret(database_url))
    )
    secret.write_text(value + "\n")
    secret.chmod(0o600)
    app = make_app(PGMIG_SECRETS=f"file:{secret}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a private file
        migrate(app)
    assert history_versions(database_url)[-1] == "20260117120000"


def test_world_readable_secrets_file_warns(make_app: AppFactory, database_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "db_secret"
    secret.write_text(with_password(database_url, PASSWORD))
    secret.chmod(0o644)
    app = make_app(PGMIG_SECRETS=f"file:{secret}")
    with pytest.warns(SecretsFileWarning) as caught:
        migrate(app)
    message = str(caught[0].message)
    assert f"The secrets file '{secret}' is readable by every user of this machine (mode 644)" in message
    assert f"chmod 600 {secret}" in message and PASSWORD not in message


def test_missing_secrets_file_is_one_error_line(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app(PGMIG_SECRETS=f"file:{tmp_path / 'nope'}")
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: The secrets file '{tmp_path / 'nope'}' cannot be read")


@pytest.mark.parametrize("returns", ["url", "mapping"])
def test_callable_provider(
    make_app: AppFactory, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, returns: str
) -> None:
    module = f"vault_client_{returns}"  # a module name per case: Python caches imported modules
    package = tmp_path / module
    package.mkdir()
    (package / "__init__.py").write_text("")
    value = with_password(database_url, PASSWORD) if returns == "url" else rds_secret(database_url)
    (package / "provider.py").write_text(
        textwrap.dedent(
            f"""
            CALLS = []

            def database_url():
                CALLS.append(1)
                return {value!r}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = make_app(PGMIG_SECRETS=f"{module}.provider:database_url")
    migrate(app)
    assert history_versions(database_url)[-1] == "20260117120000"
    assert importlib.import_module(f"{module}.provider").CALLS == [1]


# -- AWS Secrets Manager: moto in server mode, the real boto3 client over HTTP -----------------------------------
@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A boto3 Secrets Manager client on moto; the environment holds only fake credentials and a region."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    return boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="eu-central-1")


@pytest.mark.parametrize(
    ("form", "endpoint_variable"),
    [("dsn", "AWS_ENDPOINT_URL_SECRETS_MANAGER"), ("rds json", "AWS_ENDPOINT_URL")],
)
def test_aws_secrets_manager(
    make_app: AppFactory,
    database_url: str,
    aws: Any,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
    endpoint_variable: str,
) -> None:
    name = f"prod/app/{os.path.basename(database_url)}"
    value = with_password(database_url, PASSWORD) if form == "dsn" else json.dumps(rds_secret(database_url))
    aws.create_secret(Name=name, SecretString=value)
    monkeypatch.setenv(endpoint_variable, moto_endpoint)
    app = make_app(PGMIG_SECRETS=f"aws-secretsmanager:{name}")
    output = migrate(app)
    assert "Applied 3 migrations" in output
    assert history_versions(database_url)[-1] == "20260117120000"
    status = app.test_cli_runner().invoke(args=["db", "status"])
    assert status.exit_code == 0 and PASSWORD not in status.output and ":***@" in status.output


def test_aws_secret_not_found_is_one_error_line(
    make_app: AppFactory, aws: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    app = make_app(PGMIG_SECRETS="aws-secretsmanager:prod/nothing-here")
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: Could not read the AWS Secrets Manager secret 'prod/nothing-here': it does not exist in region "
        "'eu-central-1'. Check the secret name and AWS_REGION."
    )
