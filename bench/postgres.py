"""A PostgreSQL for `make bench`: the cluster HRDFUND_BENCH_DATABASE_URL names, or else one
started for the run when PostgreSQL's programs are installed (`initdb` on the PATH or
under /usr/lib/postgresql), or none.

A started cluster lives in a temporary folder, listens on a free port of 127.0.0.1 only,
has one role with a password made for the run, and is stopped and removed at the end.
PostgreSQL refuses to run as root: started by root, it runs as the user `nobody`.

Each part of the benchmark gets an empty database of its own (:meth:`Cluster.database`),
dropped when the part ends: beside HRDFUND_BENCH_DATABASE_URL's database, named after it
(`<name>_scale`, `<name>_wave`), so that role needs CREATEDB, as the tests' role has.
"""

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile

import sqlalchemy as sa


class Cluster:
    def __init__(self, url, started):
        self.url = url  # a sqlalchemy URL whose database the cluster's role can connect to
        self.started = started  # True for a cluster this run started

    @contextlib.contextmanager
    def database(self, part):
        """An empty database for ``part``, dropped on leaving; yields its URL as text."""
        prefix = self.url.database if not self.started else "hrdfund_bench"
        name = f"{prefix}_{part}"
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            yield self.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def describe(self):
        if self.started:
            return "a PostgreSQL started for the run in a temporary folder"
        return "the PostgreSQL HRDFUND_BENCH_DATABASE_URL names"


def programs():
    """The folder of PostgreSQL's programs, the newest installed, or None."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    folders = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda f: int(f.split("/")[-2]) if f.split("/")[-2].isdigit() else 0,
    )
    for folder in reversed(folders):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    return None


def version(folder):
    done = subprocess.run(  # noqa: S603 (PostgreSQL's own program)
        [os.path.join(folder, "postgres"), "--version"], capture_output=True, text=True
    )
    return done.stdout.strip()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def cluster():
    """Yield (Cluster, what it is) or (None, why there is none)."""
    given = os.environ.get("HRDFUND_BENCH_DATABASE_URL")
    if given:
        url = sa.engine.make_url(given)
        admin = sa.create_engine(url)
        with admin.connect() as conn:
            server = conn.execute(sa.text("SHOW server_version")).scalar()
        admin.dispose()
        yield Cluster(url, started=False), f"PostgreSQL {server}, HRDFUND_BENCH_DATABASE_URL"
        return
    folder = programs()
    if folder is None:
        yield None, "no PostgreSQL is installed and HRDFUND_BENCH_DATABASE_URL is unset"
        return
    with _started(folder) as url:
        yield Cluster(url, started=True), f"{version(folder)}, started for the run"


@contextlib.contextmanager
def _started(folder):
    home = tempfile.mkdtemp(prefix="hrdfund-bench-pg-")
    data, password = os.path.join(home, "data"), secrets.token_urlsafe(24)
    as_user = None
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(home, nobody.pw_uid, nobody.pw_gid)

        def as_user():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

    secret = os.path.join(home, "password")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    if as_user:
        os.chown(secret, nobody.pw_uid, nobody.pw_gid)
    port = _free_port()

    def pg(program, *args):
        subprocess.run(  # noqa: S603 (PostgreSQL's own programs, arguments written here)
            [os.path.join(folder, program), *args],
            check=True,
            capture_output=True,
            preexec_fn=as_user,  # drops root before PostgreSQL starts
            cwd=home,
            timeout=300,
        )

    try:
        pg(
            "initdb",
            "-D",
            data,
            "-U",
            "hrdfund_bench",
            "--pwfile",
            secret,
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-locale",
        )
        os.remove(secret)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home}"
        pg("pg_ctl", "-D", data, "-l", os.path.join(home, "log"), "-o", options, "-w", "start")
        try:
            yield sa.engine.URL.create(
                "postgresql+psycopg",
                username="hrdfund_bench",
                password=password,
                host="127.0.0.1",
                port=port,
                database="postgres",
            )
        finally:
            pg("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)
