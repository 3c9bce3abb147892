"""Tests of flask_pgmig.core.dsn: redaction, URL normalization, secrets providers, connect()."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flask_pgmig.core import dsn
from flask_pgmig.core.dsn import (
    SecretsFileWarning,
    connect,
    connection_kwargs,
    normalize_url,
    redact,
    redact_url,
    resolve_secret,
)
from flask_pgmig.errors import ConfigError, ConnectionFailed

# --- redact / redact_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql+psycopg2://app:s3cret@db/app", "postgresql+psycopg2://app:***@db/app"),
        ("postgresql://app:p%40ss%3Aw%2Frd@db/app", "postgresql://app:***@db/app"),
        # Unencoded '@', ':' and '/' in the password: hide up to the last '@'.
        ("postgresql://app:p@ss:w/rd@db/app", "postgresql://app:***@db/app"),
        ("postgresql://o'brien:it's@db/app", "postgresql://o'brien:***@db/app"),
        (
            "postgresql://app@db/app?password=s3cret&sslmode=require",
            "postgresql://app@db/app?password=***&sslmode=require",
        ),
        (
            "postgresql://app@db/app?sslmode=require&password=s3cret",
            "postgresql://app@db/app?sslmode=require&password=***",
        ),
        ("host=db password=s3cret dbname=app", "host=db password=*** dbname=app"),
        ("host=db password = s3cret dbname=app", "host=db password = *** dbname=app"),
        ("host=db password='se cret' dbname=app", "host=db password=*** dbname=app"),
        ("host=db password='it\\'s' dbname=app", "host=db password=*** dbname=app"),
        ("host=db sslpassword=keypass", "host=db sslpassword=***"),
        ('{"username": "app", "password": "s3 cr\\"et"}', '{"username": "app", "password": "***"}'),
        ("{'user': 'app', 'password': 's3cret'}", "{'user': 'app', 'password': '***'}"),
        ("PGPASSWORD=s3cret psql", "PGPASSWORD=*** psql"),
    ],
)
def test_redact_hides_password(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected  # idempotent: safe to apply at several layers


def test_redact_several_urls_in_one_text() -> None:
    text = "from postgresql://a:one@h1/x to 'postgresql+psycopg://b:two@h2:6543/y' (redis://:three@r:6379)"
    out = redact(text)
    assert (
        out == "from postgresql://a:***@h1/x to 'postgresql+psycopg://b:***@h2:6543/y' (redis://:***@r:6379)"
    )
    for secret in ("one", "two", "three"):
        assert secret not in out


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://app@db:5432/app",
        "postgresql://db:5432/app?sslmode=require",
        "host=db user=app dbname=app",
        "migration 20260115093000_add_email applied in 0.2s",
        "",
    ],
)
def test_redact_leaves_text_without_password_unchanged(text: str) -> None:
    assert redact(text) == text
    assert redact_url(text) == text


def test_redact_in_quoted_message_keeps_closing_quote() -> None:
    assert (
        redact("URL 'postgresql://db/app?password=x' is bad")
        == "URL 'postgresql://db/app?password=***' is bad"
    )
    assert redact("conninfo 'host=db password=x' failed") == "conninfo 'host=db password=***' failed"


def test_redact_url_hides_misquoted_conninfo_password() -> None:
    # libpq reads "cret" as a keyword and echoes it in its error, so the display must hide it too.
    assert redact_url("host=db password=se cret port=5432") == "host=db password=*** port=5432"
    assert redact_url("host=db password='se cret") == "host=db password=***"
    assert redact_url("postgresql://app:s3cret@db:5432/app") == "postgresql://app:***@db:5432/app"


# --- normalize_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/db?sslmode=require",
        "postgresql+psycopg://u:p@h:5432/db?sslmode=require",
        "postgresql+psycopg2://u:p@h:5432/db?sslmode=require",
        "postgresql+pg8000://u:p@h:5432/db?sslmode=require",
        "postgresql+asyncpg://u:p@h:5432/db?sslmode=require",
        "postgres://u:p@h:5432/db?sslmode=require",
        "PostgreSQL+Psycopg2://u:p@h:5432/db?sslmode=require",
        "  postgresql://u:p@h:5432/db?sslmode=require\n",
    ],
)
def test_normalize_url_strips_driver(url: str) -> None:
    normalized = normalize_url(url)
    assert normalized == "postgresql://u:p@h:5432/db?sslmode=require"
    assert psycopg.conninfo.conninfo_to_dict(normalized)["password"] == "p"


def test_normalize_url_keeps_encoded_credentials_and_conninfo() -> None:
    assert normalize_url("postgresql+psycopg2://u%40x:p%2F%40@h/db") == "postgresql://u%40x:p%2F%40@h/db"
    params = psycopg.conninfo.conninfo_to_dict(normalize_url("postgresql+psycopg2://u%40x:p%2F%40@h/db"))
    assert (params["user"], params["password"]) == ("u@x", "p/@")
    assert normalize_url("host=h dbname=db") == "host=h dbname=db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///app.db",
        "mysql://u:s3cret@h/db",
        "mysql+pymysql://u:s3cret@h/db",
        "mssql+pyodbc://u:s3cret@h/db",
    ],
)
def test_normalize_url_rejects_other_databases(url: str) -> None:
    with pytest.raises(ConfigError, match="is not a PostgreSQL URL") as info:
        normalize_url(url)
    assert "PGMIG_DATABASE_URL" in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("url", ["", "   ", "mydatabase"])
def test_normalize_url_rejects_garbage(url: str) -> None:
    with pytest.raises(ConfigError, match="PGMIG_DATABASE_URL"):
        normalize_url(url)


# --- resolve_secret: env, file, callable, bad specs -----------------------------------------------


def test_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGMIG_TEST_DSN", "postgresql://u:p@h/db\n")
    assert resolve_secret("env:PGMIG_TEST_DSN") == "postgresql://u:p@h/db"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_env_secret_unset_or_empty(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("PGMIG_TEST_DSN", raising=False)
    else:
        monkeypatch.setenv("PGMIG_TEST_DSN", value)
    with pytest.raises(ConfigError, match="'PGMIG_TEST_DSN'"):
        resolve_secret("env:PGMIG_TEST_DSN")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_file_secret_private_file_gives_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_text("postgresql://u:p@h/db\n")
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_secret(f"file:{path}") == "postgresql://u:p@h/db"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_file_secret_world_readable_warns(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_text("  postgresql://u:s3cret@h/db  \n")
    path.chmod(0o644)
    with pytest.warns(SecretsFileWarning, match="chmod 600") as record:
        assert resolve_secret(f"file:{path}") == "postgresql://u:s3cret@h/db"
    assert "s3cret" not in str(record[0].message)


def test_file_secret_rds_json(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text(
        json.dumps({"username": "app", "password": "p w", "host": "db", "port": 5432, "dbname": "x"})
    )
    path.chmod(0o600)
    assert resolve_secret(f"file:{path}") == "postgresql://app:p%20w@db:5432/x"


def test_file_secret_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_secret(f"file:{tmp_path / 'nope'}")


def test_file_secret_empty(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="empty"):
        resolve_secret(f"file:{path}")


@pytest.fixture
def provider_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway module on sys.path with providers of every kind; yields its name."""
    name = "pgmig_test_secrets_provider"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def url():
                return "postgresql://u:p@h/db"

            def rds():
                return {"username": "app", "password": "@:/ %", "host": "db", "port": 5432, "database": "x"}

            def number():
                return 42

            def broken():
                raise RuntimeError("vault said no for postgresql://u:s3cret@h/db")

            class Holder:
                @staticmethod
                def get():
                    return "postgresql://nested@h/db"

            NOT_CALLABLE = "postgresql://u@h/db"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_callable_secret(provider_module: str) -> None:
    assert resolve_secret(f"{provider_module}:url") == "postgresql://u:p@h/db"
    assert resolve_secret(f"{provider_module}:Holder.get") == "postgresql://nested@h/db"
    url = resolve_secret(f"{provider_module}:rds")
    assert url == "postgresql://app:%40%3A%2F%20%25@db:5432/x"
    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "@:/ %"


@pytest.mark.parametrize(
    ("func", "message"),
    [
        ("number", "gave a int"),
        ("broken", "raised RuntimeError"),
        ("missing", "cannot be loaded"),
        ("NOT_CALLABLE", "raised TypeError"),
    ],
)
def test_callable_secret_errors(provider_module: str, func: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve_secret(f"{provider_module}:{func}")
    assert "s3cret" not in str(info.value)
    assert info.value.__cause__ is None


def test_callable_secret_unknown_module() -> None:
    with pytest.raises(ConfigError, match="cannot be loaded"):
        resolve_secret("pgmig_no_such_module_anywhere:get")


@pytest.mark.parametrize(
    "spec", ["", "env:", "file:", "vault:secret/db", "postgresql://u:s3cret@h/db", "aws-secretsmanager:"]
)
def test_bad_specs_list_accepted_forms(spec: str) -> None:
    with pytest.raises(ConfigError, match="env:NAME") as info:
        resolve_secret(spec)
    assert "s3cret" not in str(info.value)


def test_rds_mapping_errors() -> None:
    with pytest.raises(ConfigError, match="engine 'mysql'"):
        dsn._dsn_from_rds({"engine": "mysql", "username": "u", "host": "h"}, "secret 'x'")
    with pytest.raises(ConfigError, match="'host'"):
        dsn._dsn_from_rds({"username": "u", "password": "s3cret"}, "secret 'x'")
    assert dsn._dsn_from_rds({"username": "u", "host": "::1"}, "s") == "postgresql://u@[::1]"


# --- resolve_secret: AWS Secrets Manager against moto's server ------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on a free loopback port, so the real boto3 client talks HTTP to it."""
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    return moto_endpoint


def _create_secret(endpoint: str, name: str, value: str) -> None:
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="eu-west-3")
    client.create_secret(Name=name, SecretString=value)


def test_aws_secret_full_dsn(aws_env: str) -> None:
    _create_secret(aws_env, "pgmig/test/full", "postgresql://app:s3cret@db.internal:5432/app")
    assert (
        resolve_secret("aws-secretsmanager:pgmig/test/full") == "postgresql://app:s3cret@db.internal:5432/app"
    )


def test_aws_secret_rds_json(aws_env: str) -> None:
    secret = {
        "username": "app user",
        "password": "p@ss:w/rd %x",
        "engine": "postgres",
        "host": "db.internal",
        "port": 5432,
        "dbname": "app",
        "dbInstanceIdentifier": "db-1",
    }
    _create_secret(aws_env, "pgmig/test/rds", json.dumps(secret))
    url = resolve_secret("aws-secretsmanager:pgmig/test/rds")
    assert url == "postgresql://app%20user:p%40ss%3Aw%2Frd%20%25x@db.internal:5432/app"
    params = psycopg.conninfo.conninfo_to_dict(url)
    assert (params["user"], params["password"], params["dbname"]) == ("app user", "p@ss:w/rd %x", "app")


def test_aws_secret_region_from_default_region(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _create_secret(aws_env, "pgmig/test/region", "postgresql://u@h/db")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert resolve_secret("aws-secretsmanager:pgmig/test/region") == "postgresql://u@h/db"


def test_aws_secret_missing(aws_env: str) -> None:
    with pytest.raises(ConfigError, match=r"'pgmig/test/nope'.*does not exist") as info:
        resolve_secret("aws-secretsmanager:pgmig/test/nope")
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "\n" not in str(info.value)


def test_aws_secret_no_credentials(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    # Keep botocore from asking the EC2 metadata service, which would hang the test off-cloud.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ConfigError, match="no AWS credentials") as info:
        resolve_secret("aws-secretsmanager:pgmig/test/full")
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_aws_without_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes "import boto3" raise ImportError
    with pytest.raises(ConfigError, match=r"pip install 'flask-pgmig\[aws\]'"):
        resolve_secret("aws-secretsmanager:anything")


# --- connection_kwargs / connect ------------------------------------------------------------------


def test_connection_kwargs() -> None:
    assert connection_kwargs() == {
        "application_name": "pgmig",
        "client_encoding": "UTF8",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "connect_timeout": 10,
    }
    assert connection_kwargs("pgmig-lock")["application_name"] == "pgmig-lock"


def test_connect_sets_application_name_and_autocommit(pg_server_url: str) -> None:
    with connect(pg_server_url) as conn:
        assert conn.autocommit
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("pgmig",)
        # Keepalives are options of the client's socket, so libpq (not the server) is where to see them.
        params = conn.info.get_parameters()
        assert params["keepalives"] == "1" and params["keepalives_idle"] == "30"
        assert params["connect_timeout"] == "10"
    with connect(
        pg_server_url.replace("postgresql://", "postgresql+psycopg2://", 1), autocommit=False
    ) as conn:
        assert not conn.autocommit


def test_connect_extra_overrides_defaults(pg_server_url: str) -> None:
    with connect(pg_server_url, application_name="pgmig-test") as conn:
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("pgmig-test",)


def _assert_hidden(exc: BaseException, *secrets: str) -> None:
    shown = [str(exc), repr(exc), str(exc.args)]
    for secret in secrets:
        assert all(secret not in text for text in shown), shown
    assert exc.__cause__ is None and exc.__context__ is None


def test_connect_refused_hides_password() -> None:
    with pytest.raises(ConnectionFailed) as info:
        connect("postgresql://app:hunter2-SECRET@127.0.0.1:1/app")
    assert str(info.value) == (
        "Could not connect to PostgreSQL at 'postgresql://app:***@127.0.0.1:1/app': connection refused. "
        "Check that the server is running and PGMIG_DATABASE_URL is right."
    )
    _assert_hidden(info.value, "hunter2")
    assert getattr(info.value, "sqlstate", "unset") is None


def test_connect_unknown_database(pg_server_url: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(pg_server_url)
    params["dbname"] = "pgmig_no_such_database"
    params["password"] = "hunter2-SECRET"  # trust auth ignores it
    url = psycopg.conninfo.make_conninfo(**params)
    with pytest.raises(ConnectionFailed, match=r"does not exist\. Check the database") as info:
        connect(url)
    _assert_hidden(info.value, "hunter2")


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        # libpq's own parse errors quote the part they choke on: here a piece of the password.
        ("host=127.0.0.1 port=1 password=hunter2 SECRETWORD", "SECRETWORD"),
        ("host=127.0.0.1 port=1 password='hunter2-SECRET", "hunter2"),
        ("postgresql://app:hunter2%zzSECRET@127.0.0.1:1/app", "hunter2"),
        ("postgresql://app:hunter2-SECRET@[::1/app", "hunter2"),
        ("postgresql://app:hunter2-SECRET@127.0.0.1:notaport/app", "hunter2"),
    ],
)
def test_connect_invalid_conninfo_hides_password(url: str, secret: str) -> None:
    with pytest.raises(ConnectionFailed) as info:
        connect(url)
    _assert_hidden(info.value, secret, "SECRET")
    assert "PGMIG_DATABASE_URL" in str(info.value)


def test_connect_rejects_non_postgresql_url() -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL URL"):
        connect("sqlite:///app.db")
