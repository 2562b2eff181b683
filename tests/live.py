"""The app served as in production, and a plain-HTTP client to drive it.

`LiveServer` prepares a database with the `flask` command and serves it with gunicorn
(several sync workers, HRDFUND_ENV=production, explicit keys), in a process group of its
own so that a test can kill the master and its workers at once. `Client` speaks HTTP/1.1
through http.client on a fresh connection for every request, so consecutive requests are
taken by whichever worker accepts them first; it keeps its own cookies and fills in forms
read from the pages, CSRF tokens included.
"""

import base64
import html.parser
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from concurrent.futures import ThreadPoolExecutor

import pyotp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
SESSION_COOKIE = "hrdfund_session"


def new_key():
    """A secret as production wants it: the base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def gunicorn_command(port, workers):
    """How production serves the app: gunicorn's sync workers on a local port, behind the
    proxy that ends TLS. `--no-control-socket`: gunicorn would otherwise open a control
    socket at a fixed path under $HOME (or $XDG_RUNTIME_DIR), shared by every instance."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"{HOST}:{port}",
        "--no-control-socket",
        "app:app",
    ]


class LiveServer:
    """gunicorn serving one database in production mode; start, kill and restart it."""

    def __init__(self, database_url, folder, workers=3, settings=None):
        self.database_url = database_url
        #: HRDFUND_ settings of this server (the caller's own are left out).
        self.settings = dict(settings or {})
        self.folder = folder
        self.instance = folder / "instance"
        self.workers = workers
        self.keys = {
            "SECRET_KEY": new_key(),
            "HRDFUND_ENCRYPTION_KEY": new_key(),
            "HRDFUND_AUDIT_KEY": new_key(),
        }
        self.port = free_port()
        self.access_log = folder / "access.log"
        self.server_log = folder / "server.log"
        self.backend = database_url.split(":", 1)[0].split("+", 1)[0]
        self.accounts = {}
        #: The demo accounts' authenticator app, which knows the codes it gave already.
        self.authenticator = Authenticator()
        self.process = None
        self._log = None

    @property
    def command(self):
        # Test only: an access log of the worker's pid and the status, nothing about the
        # request, so a test can tell which workers answered.
        return gunicorn_command(self.port, self.workers) + [
            "--access-logfile",
            str(self.access_log),
            "--access-logformat",
            "%(p)s %(s)s",
        ]

    def env(self, mode="production"):
        """The environment of the server and of the flask command: this database, these
        keys, and none of the caller's hrdfund settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HRDFUND_", "FLASK_")) and k not in ("DATABASE_URL", "SECRET_KEY")
        }
        env.update(
            self.keys,
            **self.settings,
            HRDFUND_ENV=mode,
            DATABASE_URL=self.database_url,
            HRDFUND_INSTANCE_PATH=str(self.instance),
            FLASK_APP="app",
        )
        return env

    def flask(self, *args, mode="production", check=True, timeout=180):
        """Run `flask ARGS` against this database; raise with its output when it fails."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", *args],
            cwd=ROOT,
            env=self.env(mode),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"flask {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def prepare(self, scale):
        """Migrate, then load the demo world. `demo-data` refuses to run in production, so
        it runs in development mode with the same keys and database the server uses."""
        self.flask("db", "upgrade")
        self.flask("hrdfund", "demo-data", "--scale", str(scale), mode="development")
        with open(self.instance / "demo-accounts.json") as fh:
            self.accounts = {account["login"]: account for account in json.load(fh)}

    def start(self, timeout=30):
        """Start gunicorn in a new session (its own process group) and wait for it."""
        self._log = open(self.server_log, "a")  # noqa: SIM115 (closed by stop/kill)
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        # Ready when every worker has answered: each imports the app after the fork, and
        # on a busy machine the first one answers seconds before the last.
        seen = set()
        while len(seen) < self.workers:
            mark = self.log_mark()
            try:
                with ThreadPoolExecutor(2 * self.workers) as pool:
                    answers = list(pool.map(lambda _n: Client(self.port).get("/login"), range(8)))
                if all(answer.status == 200 for answer in answers):
                    seen.update(self.workers_since(mark, len(answers), timeout=1))
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"gunicorn did not start all workers:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self):
        """SIGKILL the master and every worker at once, as `kill -9` or the OOM killer
        would. The machine stays up: what was handed to the OS is not lost."""
        if self.process is None:
            return
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        self._close_log()

    def stop(self):
        """Shut down gracefully, or kill the whole group when that takes too long."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None
        self._close_log()

    def _signal(self, signum):
        """Signal gunicorn's process group: the master, whose pid names the group (it
        leads a session of its own), and its workers."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars=4000):
        try:
            return self.server_log.read_text()[-chars:]
        except OSError:
            return ""

    def log_mark(self):
        """Where the access log ends now; `workers_since` reads what follows."""
        try:
            return self.access_log.stat().st_size
        except FileNotFoundError:
            return 0

    def workers_since(self, mark, expected, timeout=5):
        """The pids of the workers that answered the `expected` requests made since `mark`.
        A worker writes its line after sending the response, so wait for the lines."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.access_log, "rb") as fh:
                fh.seek(mark)
                lines = fh.read().decode().splitlines()
            if len(lines) >= expected or time.monotonic() > deadline:
                return [line.split()[0] for line in lines if line.strip()]
            time.sleep(0.05)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        #: The bytes as sent (a download), and as text.
        self.body = body
        self.text = body.decode("utf-8", "replace")

    @property
    def location(self):
        """The path a redirect points to, without host, query or anchor."""
        value = self.headers.get("Location")
        return urllib.parse.urlsplit(value).path if value else None

    @property
    def flashes(self):
        """The messages this response flashed: Flask keeps them in the session cookie it
        sets, signed but readable (compressed JSON before the first dot)."""
        for line in self.headers.get_all("Set-Cookie") or []:
            name, _, value = line.split(";")[0].partition("=")
            if name != SESSION_COOKIE or not value:
                continue
            data = value.removeprefix(".").split(".")[0]
            data = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            if value.startswith("."):
                data = zlib.decompress(data)
            # Flask tags the (category, message) tuples: {" t": [category, message]}.
            return [
                (item.get(" t") if isinstance(item, dict) else item)[1]
                for item in json.loads(data).get("_flashes", [])
            ]
        return []

    def __repr__(self):
        return f"<Response {self.status} {self.location or ''} {self.flashes or ''}>"


class Client:
    """A browser without a browser: one fresh TCP connection per request, its own cookies.

    Production marks the session cookie `Secure` (SESSION_COOKIE_SECURE=True), so a real
    browser sends it back over HTTPS only. In production TLS ends at the proxy in front of
    gunicorn, which then talks plain HTTP to it on 127.0.0.1, as this client does: it
    keeps the cookie and sends it to 127.0.0.1 anyway. The product's configuration is not
    relaxed for the test; the client plays the proxy's part.
    """

    def __init__(self, port):
        self.port = port
        self.cookies = {}
        self._lock = threading.Lock()

    def request(self, method, path, body=None, headers=None, cookies=None, barrier=None):
        """One request on a new connection. `cookies` replays a jar given as is (nothing
        stored from the answer); by default the client's own jar is sent and kept up. With
        a `barrier`, the connection is open when the request waits on it, so requests
        released together are sent together."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
        own = cookies is None
        with self._lock:
            jar = dict(self.cookies if own else cookies)
        sent = {"Connection": "close", **(headers or {})}
        if jar:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in jar.items())
        try:
            if barrier is not None:
                conn.connect()
                barrier.wait(timeout=30)
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            data = raw.read()
        finally:
            conn.close()
        if own:
            self._keep(raw.headers.get_all("Set-Cookie") or [])
        return Response(raw.status, raw.headers, data)

    def _keep(self, set_cookies):
        with self._lock:
            for line in set_cookies:
                first, *attributes = (part.strip() for part in line.split(";"))
                name, _, value = first.partition("=")
                attributes = {a.lower() for a in attributes}
                if not value or "max-age=0" in attributes:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value

    def get(self, path, cookies=None):
        return self.request("GET", path, cookies=cookies)

    def jar(self):
        """A copy of the client's cookies as they are now, to send requests with."""
        with self._lock:
            return dict(self.cookies)

    def follow(self, answer, jar=None):
        """The page a redirect leads to, asked with the cookies that very answer set (a
        refused form's token among them) over ``jar`` (the client's cookies by default),
        keeping none of them."""
        jar = dict(jar if jar is not None else self.jar())
        for line in answer.headers.get_all("Set-Cookie") or []:
            name, _, value = line.split(";")[0].strip().partition("=")
            if value:
                jar[name] = value
        return self.get(answer.headers.get("Location"), cookies=jar)

    def post(
        self, path, fields, multipart=False, files=(), cookies=None, barrier=None, uploads=None
    ):
        """Post `fields` (pairs) urlencoded, or as multipart/form-data with an empty file
        part for each name in `files`, as a browser sends a form with no file chosen, or
        the file `uploads` gives for that name: (file name, bytes)."""
        uploads = uploads or {}
        if not multipart:
            body = urllib.parse.urlencode(list(fields)).encode()
            kind = "application/x-www-form-urlencoded"
        else:
            boundary = "----hrdfund" + secrets.token_hex(12)
            parts = []
            for name, value in fields:
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                    f"{value}\r\n".encode()
                )
            for name in files:
                filename, data = uploads.get(name, ("", b""))
                head = (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                )
                parts.append(head.encode() + data + b"\r\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            kind = f"multipart/form-data; boundary={boundary}"
        return self.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": kind},
            cookies=cookies,
            barrier=barrier,
        )

    def form(self, path, action=None):
        """GET `path` and return its form posting to `action` (default: `path`)."""
        page = self.get(path)
        assert page.status == 200, f"GET {path}: {page.status}\n{page.text[:500]}"
        return find_form(page.text, action or path)

    def submit(self, form, values=None, *, jar=None, uploads=None, **more):
        """Post `form` as the page has it, with `values` (by field name) changed; with a
        `jar`, sent with those cookies and keeping none, as a browser whose other tabs
        send at the same moment (so no answer sees another's session)."""
        return self.post(
            form.action,
            form.payload(values, **more),
            multipart=form.enctype == "multipart/form-data",
            files=form.files,
            cookies=jar,
            uploads=uploads,
        )


class Form:
    def __init__(self, attrs):
        self.action = attrs.get("action") or ""
        self.method = (attrs.get("method") or "get").lower()
        self.enctype = attrs.get("enctype") or "application/x-www-form-urlencoded"
        self.fields = []  # [name, value] in page order
        self.options = {}  # select name -> [(value, label)]
        self.files = []
        self.typed = []  # names of the fields a person types into
        self.names = set()  # every field's name, boxes not ticked and named buttons included

    def value(self, name):
        return next(value for field, value in self.fields if field == name)

    def payload(self, values=None, **more):
        values = {**(values or {}), **more}
        missing = set(values) - {name for name, _value in self.fields}
        assert not missing, f"form {self.action} has no field {sorted(missing)}"
        return [(name, str(values.get(name, value))) for name, value in self.fields]


class _FormParser(html.parser.HTMLParser):
    """The forms of a page with what a browser would send for each field."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = None
        self._select = None
        self._option = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = {name: value if value is not None else "" for name, value in attrs}
        if tag == "form":
            self._form = Form(attrs)
            self.forms.append(self._form)
        elif self._form is None or "disabled" in attrs:
            return
        elif tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text").lower()
            self._form.names.add(attrs["name"])
            if kind == "file":
                self._form.files.append(attrs["name"])
            elif kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self._form.fields.append([attrs["name"], attrs.get("value", "on")])
            elif kind not in ("submit", "button", "image", "reset"):
                self._form.fields.append([attrs["name"], attrs.get("value", "")])
                if kind != "hidden":
                    self._form.typed.append(attrs["name"])
        elif tag == "button" and attrs.get("name"):
            # Sent only when it is the button pressed: a name the form takes, not a field.
            self._form.names.add(attrs["name"])
        elif tag == "select" and attrs.get("name"):
            self._select = [attrs["name"], None, []]
        elif tag == "option" and self._select is not None:
            self._option = [attrs.get("value"), "", "selected" in attrs]
        elif tag == "textarea" and attrs.get("name"):
            self._textarea = [attrs["name"], ""]
            self._form.typed.append(attrs["name"])

    def handle_data(self, data):
        if self._option is not None:
            self._option[1] += data
        elif self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None:
            value, label, selected = self._option
            label = label.strip()
            value = label if value is None else value
            self._select[2].append((value, label))
            if selected or self._select[1] is None:
                self._select[1] = value
            self._option = None
        elif tag == "select" and self._select is not None:
            name, value, options = self._select
            self._form.options[name] = options
            self._form.fields.append([name, value or ""])
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, text = self._textarea
            # A newline right after <textarea> is not part of the value.
            self._form.fields.append([name, text.removeprefix("\r\n").removeprefix("\n")])
            self._textarea = None
        elif tag == "form":
            self._form = None


def page_forms(page):
    """Every form of `page`, in page order."""
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def find_form(page, action):
    """The form of `page` whose action is the path `action`."""
    for form in page_forms(page):
        if urllib.parse.urlsplit(form.action).path == action:
            return form
    actions = [form.action for form in page_forms(page)]
    raise AssertionError(f"no form posts to {action}; the page has {actions}")


class Authenticator:
    """The demo accounts' authenticator app: a current code, never one used before (the
    server takes each time step once per account, and also the next one)."""

    def __init__(self):
        self._last = {}
        self._lock = threading.Lock()

    def code(self, secret):
        while True:
            step = int(time.time() // 30)
            with self._lock:
                for candidate in (step, step + 1):
                    if candidate > self._last.get(secret, -1):
                        self._last[secret] = candidate
                        return pyotp.TOTP(secret).at(candidate * 30)
            time.sleep(1)


def sign_in(client, account, authenticator):
    """Password then code, through the pages; return the page the account lands on."""
    form = client.form("/login")
    answer = client.submit(form, login=account["login"], password=account["password"])
    assert answer.status == 302 and answer.location == "/login/code", (
        f"{account['login']}: {answer}\n{answer.text[:800]}"
    )
    form = client.form("/login/code")
    answer = client.submit(form, code=authenticator.code(account["totp_secret"]))
    assert answer.status == 302 and answer.location == "/", (
        f"{account['login']}: {answer}\n{answer.text[:800]}"
    )
    home = client.get("/")
    assert home.status == 302, home
    return home.location
