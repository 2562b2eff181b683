"""What every app the tests build would compile again, compiled once per test process.

Each test builds an application of its own, and a new application compiles its templates
(Jinja turns each into Python and compiles that) and its URL rules (Werkzeug compiles a
function that builds each rule's URLs) again, though they are the same for every app: a
third of an ordinary test's time went there. The results are kept here and handed to the
next app. What is handed over depends only on what it is made from:

- a template's code, on its source and the options of the environment that compiled it
  (the extensions, the gettext style, the block options), all part of the key; the code
  is bound to the environment that loads it, so each app's filters and globals are its own;
- a rule's URL builder, on the rule's text, its parts and its defaults; the builder is a
  plain function bound to each rule, reading the rule's own converters when it runs;
- a rule's parts (the patterns it matches by), on the rule's text and the converters its
  map offers; each rule gets converters of its own, bound to its own map;
- a SQL statement's compiled form, on the statement and the dialect: SQLAlchemy keeps it
  per engine (and per mapper, keyed by the engine's dialect), and each app has an engine
  and a dialect of its own. Here the engines share one cache, and two dialects are the
  same key when they are of one class, speak to one server version and take the same
  settings (parameter style, isolation level, JSON handling, identifier lengths).
"""

import copy

import sqlalchemy as sa
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import util
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultDialect
from werkzeug.routing.rules import Rule


class SharedTemplateCode(BytecodeCache):
    """Compiled templates kept in memory for every Jinja environment of the process."""

    def __init__(self):
        self.code = {}

    @staticmethod
    def _options(environment):
        return (
            tuple(sorted(environment.extensions)),
            getattr(environment, "newstyle_gettext", None),
            environment.trim_blocks,
            environment.lstrip_blocks,
            environment.keep_trailing_newline,
            environment.optimized,
            environment.block_start_string,
            environment.variable_start_string,
            environment.comment_start_string,
            environment.line_statement_prefix,
        )

    def get_bucket(self, environment, name, filename, source):
        key = (self.get_cache_key(name, filename), self._options(environment))
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket):
        checksum, code = self.code.get(bucket.key, (None, None))
        if checksum == bucket.checksum:
            bucket.code = code

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = (bucket.checksum, bucket.code)


TEMPLATES = SharedTemplateCode()


def share_templates(flask_class):
    """Every app of ``flask_class`` made from now on keeps its compiled templates in
    TEMPLATES; returns a function that undoes this."""
    plain = flask_class.create_jinja_environment

    def create_jinja_environment(self):
        environment = plain(self)
        environment.bytecode_cache = TEMPLATES
        return environment

    flask_class.create_jinja_environment = create_jinja_environment
    return lambda: setattr(flask_class, "create_jinja_environment", plain)


def share_url_builders():
    """Every URL rule compiled from now on reuses the builder of an equal rule compiled
    before; returns a function that undoes this."""
    plain = Rule._compile_builder
    builders = {}

    def compile_builder(self, append_unknown=True):
        defaults = self.defaults or {}
        key = (
            append_unknown,
            self.rule,
            tuple(self._trace),
            tuple(
                (
                    name,
                    repr(value),
                    self._converters[name].to_url(value) if (True, name) in self._trace else None,
                )
                for name, value in sorted(defaults.items())
            ),
        )
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = plain(self, append_unknown)
        return builder

    Rule._compile_builder = compile_builder
    return lambda: setattr(Rule, "_compile_builder", plain)


def share_url_rules():
    """Every URL rule compiled from now on takes its parts from an equal rule compiled
    before, its converters copied and bound to its own map; returns a function that
    undoes this. (Parsing the rules was most of the time an app took to be made.)"""
    plain = Rule.compile
    compiled = {}

    def compile(self):
        key = (
            self.rule,
            self.host if self.map.host_matching else self.subdomain,
            self.map.host_matching,
            self.merge_slashes,
            tuple(sorted(self.map.converters.items())),
        )
        kept = compiled.get(key)
        if kept is None:
            plain(self)
            compiled[key] = (tuple(self._parts), tuple(self._trace), dict(self._converters))
            return
        parts, trace, converters = kept
        self._parts, self._trace = list(parts), list(trace)
        self._converters = {}
        for name, converter in converters.items():
            own = copy.copy(converter)
            own.map = self.map
            self._converters[name] = own
        self.arguments.update(converters)
        self._build = self._compile_builder(False).__get__(self, None)
        self._build_unknown = self._compile_builder(True).__get__(self, None)

    Rule.compile = compile
    return lambda: setattr(Rule, "compile", plain)


#: The statements compiled for every engine of the process, both backends.
STATEMENTS = util.LRUCache(5000)


def _dialect_signature(dialect):
    return (
        type(dialect),
        dialect.server_version_info,
        dialect.paramstyle,
        dialect.positional,
        getattr(dialect, "isolation_level", None),
        getattr(dialect, "_json_serializer", None),
        getattr(dialect, "_json_deserializer", None),
        dialect.label_length,
        dialect.max_identifier_length,
        dialect.default_schema_name,
    )


def share_compiled_sql():
    """Every engine made from now on keeps its compiled statements in STATEMENTS, and
    equal dialects find each other's; returns a function that undoes this."""
    plain = Engine.__dict__.get("_compiled_cache")

    def kept(engine):
        return STATEMENTS if engine.__dict__.get("_own_compiled_cache") is not None else None

    def keep(engine, cache):
        # An engine made with query_cache_size=0 caches nothing; the others share.
        engine.__dict__["_own_compiled_cache"] = cache

    def equal(dialect, other):
        return dialect is other or (
            isinstance(other, DefaultDialect)
            and _dialect_signature(dialect) == _dialect_signature(other)
        )

    Engine._compiled_cache = property(kept, keep)
    DefaultDialect.__eq__ = equal
    DefaultDialect.__hash__ = lambda dialect: hash(_dialect_signature(dialect))

    def undo():
        if plain is None:
            del Engine._compiled_cache
        else:
            Engine._compiled_cache = plain
        del DefaultDialect.__eq__
        del DefaultDialect.__hash__

    return undo


#: The PostgreSQL engines of the process, by their URL and options.
ENGINES = {}


def share_postgresql_engines():
    """Every app made from now on with a PostgreSQL database uses the engine, and so the
    pooled connections, of the app before it with the same URL and options; returns a
    function that undoes this.

    A new connection costs a PostgreSQL server a process whose caches of the schema start
    empty, and it plans each statement as if it had never seen it. Kept from one test to
    the next, a connection has the schema cached and prepares the statements it runs
    often (psycopg prepares a statement on its fifth run). What a test leaves on one ends
    with its transaction: the pool rolls back each connection it takes back, and the
    application takes only locks that end with the transaction."""
    from flask_sqlalchemy.extension import SQLAlchemy

    plain = SQLAlchemy._make_engine

    def make_engine(self, bind_key, options, app):
        url = sa.engine.make_url(options["url"])
        if url.get_backend_name() != "postgresql":
            return plain(self, bind_key, options, app)
        key = (url.render_as_string(hide_password=False), repr(sorted(options.items())))
        engine = ENGINES.get(key)
        if engine is None:
            engine = ENGINES[key] = plain(self, bind_key, options, app)
        return engine

    SQLAlchemy._make_engine = make_engine

    def undo():
        SQLAlchemy._make_engine = plain
        for engine in ENGINES.values():
            engine.dispose()
        ENGINES.clear()

    return undo
