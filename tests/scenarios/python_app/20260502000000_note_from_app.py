"""Receives the Flask app (Settings.context) because up() takes a second argument."""


def up(conn, app):
    conn.execute("INSERT INTO notes (body) VALUES (%s)", [app.config["GREETING"]])


def down(conn, app):
    conn.execute("DELETE FROM notes WHERE body = %s", [app.config["GREETING"]])
