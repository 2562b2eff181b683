"""The submission benchmark's baseline: a bare Flask route doing one INSERT, served by the
same gunicorn setup on the same database as the app (DATABASE_URL; SQLite with the app's
own durability settings: WAL and synchronous=FULL)."""

import os
import sqlite3
import threading
from datetime import UTC, datetime

from flask import Flask, request

URL = os.environ["DATABASE_URL"]
app = Flask(__name__)
_local = threading.local()


def _connection():
    connection = getattr(_local, "connection", None)
    if connection is not None:
        return connection
    if URL.startswith("sqlite:///"):
        connection = sqlite3.connect(URL.removeprefix("sqlite:///"), isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            connection.execute(f"PRAGMA {pragma}")
        create = (
            "CREATE TABLE IF NOT EXISTS bench_inserts (id INTEGER PRIMARY KEY, at TEXT, body TEXT)"
        )
    else:
        import psycopg

        connection = psycopg.connect(URL.replace("postgresql+psycopg://", "postgresql://"))
        create = (
            "CREATE TABLE IF NOT EXISTS bench_inserts (id SERIAL PRIMARY KEY, at TEXT, body TEXT)"
        )
    connection.execute(create)
    if not URL.startswith("sqlite:///"):
        connection.commit()
    _local.connection = connection
    return connection


@app.post("/insert")
def insert():
    connection = _connection()
    values = (datetime.now(UTC).isoformat(), request.form.get("body", ""))
    if URL.startswith("sqlite:///"):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO bench_inserts (at, body) VALUES (?, ?)", values)
        connection.execute("COMMIT")
    else:
        connection.execute("INSERT INTO bench_inserts (at, body) VALUES (%s, %s)", values)
        connection.commit()
    return "ok"
