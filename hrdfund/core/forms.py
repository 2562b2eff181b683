"""The base of every form a page posts, and of the parts a form repeats (a budget line, a
reference): its CSRF token is one hidden field named ``csrf_token``, whatever the form's
prefix, and carries no id; and every line of text it takes leaves out the characters that
would make it read differently from what it holds.

``csrf_token`` is the name Flask-WTF reads and the one proxies and scanners look for. A
page holds several forms (a case page a dozen), each with its token: an id on the token
would repeat on the page, so it has none (nothing labels or points at it).
"""

import functools

import wtforms
from babel import support
from flask import g, request
from flask_babel import get_locale
from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, MultiDict
from wtforms import FileField, HiddenField, PasswordField, SelectChoice, StringField
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields.core import UnboundField
from wtforms.i18n import messages_path
from wtforms.widgets import HiddenInput

from .money import CURRENCIES, currency_name
from .text import INVISIBLE, strip_invisible  # noqa: F401  (what forms and files strip)

#: Set on ``g`` when a page renders the form refused for it.
REFUSED_SHOWN = "hrdfund_refused_shown"
#: The hidden field naming a form that holds no secret (its ``form_key``): a form sent
#: after its session ended is kept under that name, for its page to show it back filled
#: in once the person has signed in again (``auth.refused.keep_unsent``).
FORM_MARK = "_form"


def form_key(form):
    """What tells a form from the others of its page: its class and its prefix."""
    return f"{type(form).__name__}:{form._prefix}"


@functools.cache
def secret_field_names():
    """The names of the fields that hold a secret (a password, a code) in any form of
    ours: what a form sent after its session ended never keeps, whatever form it says it
    is. Read once every form class is defined (at the first request that needs it)."""
    names, classes = set(), [PageForm]
    while classes:
        form_class = classes.pop()
        classes.extend(form_class.__subclasses__())
        names.update(form_class.SECRET_FIELDS)
        for name in dir(form_class):
            value = getattr(form_class, name, None)
            if isinstance(value, UnboundField) and issubclass(value.field_class, PasswordField):
                names.add(name)
    return frozenset(names)


def _bind_text(form, unbound_field, options):
    """Bind a field; one that takes text (not a password: it is kept exactly as typed, and
    only ever hashed) drops the invisible characters of what it is sent."""
    field_class = unbound_field.field_class
    if issubclass(field_class, StringField) and not issubclass(field_class, PasswordField):
        filters = (*unbound_field.kwargs.get("filters", ()), strip_invisible)
        return unbound_field.bind(form=form, **{**options, "filters": filters})
    return unbound_field.bind(form=form, **options)


class PartForm(wtforms.Form):
    """A part a form repeats or nests (a budget line, a reference, a draw on a pool)."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            return _bind_text(form, unbound_field, options)


@functools.cache
def _wtforms_catalog(locale):
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _WTFormsWords:
    """WTForms' own messages in the page's language, each language's catalog read once
    per process (Flask-WTF read it from the disk again for every request)."""

    @staticmethod
    def _catalog():
        locale = get_locale()
        return None if locale is None else _wtforms_catalog(str(locale))

    def gettext(self, string):
        catalog = self._catalog()
        return string if catalog is None else catalog.ugettext(string)

    def ngettext(self, singular, plural, n):
        catalog = self._catalog()
        if catalog is None:
            return singular if n == 1 else plural
        return catalog.ungettext(singular, plural, n)


WTFORMS_WORDS = _WTFormsWords()


class TokenInput(HiddenInput):
    """A hidden input without an id."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", False)
        return super().__call__(field, **kwargs)


class PageForm(FlaskForm):
    """A form of a page; its CSRF token is named ``csrf_token`` even under a prefix, and
    its text comes without invisible characters.

    A refused form comes back on its page through ``auth.refused``: ``refused`` then says
    so, ``problems`` lists what the page shows apart from the fields' errors, and ``about``
    names the row it was sent for; rendering it notes that the page showed it (a refusal
    the page did not show is said at the top). ``SECRET_FIELDS`` are never kept for that
    (passwords, files and the CSRF token never are)."""

    SECRET_FIELDS = ()
    #: A form a page sends by GET (it stores nothing): no CSRF token and no name of its
    #: own go into the address it opens.
    SENT_BY_GET = False
    refused = False
    problems = ()
    about = None

    def hidden_tag(self, *fields):
        """The form's hidden fields, rendered with the form, and its name where it holds
        no secret."""
        if self.refused:
            setattr(g, REFUSED_SHOWN, True)
        tag = super().hidden_tag(*fields)
        if not self.holds_secrets() and not self.SENT_BY_GET:
            mark = HiddenField(widget=TokenInput()).bind(form=self, name=FORM_MARK)
            mark.process(None, form_key(self))
            tag += mark()
        return tag

    def holds_secrets(self):
        """Whether the form takes a password or another of its ``SECRET_FIELDS``."""
        return any(
            isinstance(field, PasswordField) or field.short_name in self.SECRET_FIELDS
            for field in self
        )

    class Meta:
        def get_translations(self, form):
            return WTFORMS_WORDS

        def wrap_formdata(self, form, formdata):
            """What was sent, with the files sent for the form's file fields only: a file
            sent under the name of a text field (a password, an amount) is not read as
            its text, so it is refused as a missing value is, never a crash."""
            formdata = super().wrap_formdata(form, formdata)
            if not isinstance(formdata, CombinedMultiDict):
                return formdata
            wanted = {field.name for field in form if isinstance(field, FileField)}
            files = MultiDict(
                [(name, sent) for name, sent in request.files.items(multi=True) if name in wanted]
            )
            return CombinedMultiDict((files, request.form)) if files else request.form

        def bind_field(self, form, unbound_field, options):
            """Bind the CSRF token without the form's prefix, to render without an id;
            every other field as usual."""
            if issubclass(unbound_field.field_class, CSRFTokenField):
                options = {**options, "prefix": ""}
                return unbound_field.bind(form=form, widget=TokenInput(), **options)
            return _bind_text(form, unbound_field, options)


class PrefixedForm(PageForm):
    """A form whose fields carry its prefix, so several forms share a page without two
    elements of the same id (a note's body and a message's body)."""

    PREFIX = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", self.PREFIX)
        super().__init__(*args, **kwargs)


class ConfirmForm(PageForm):
    """A form with no fields: protects POST-only buttons with a CSRF token."""


def options(pairs):
    """Select options from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


def currency_options():
    """Every currency funds pay in, each by its code and its name in the reader's language
    (KES · Kenyan Shilling; KES · shilling kényan), where the list showed codes alone."""
    return options((code, LazyString(_currency_label, code)) for code in CURRENCIES)


def _currency_label(code):
    return _named_currency(code, str(get_locale() or "en"))


@functools.cache
def _named_currency(code, locale):
    """ "KES · Kenyan Shilling", built once per currency and language: every payment and
    budget form lists some sixty of them."""
    return f"{code} · {currency_name(code, locale)}"


class KeptOptionsSelect(wtforms.widgets.Select):
    """A select whose options are one long list built once per language (the countries):
    the HTML it draws for a list, the answer chosen and the attributes asked for is kept
    and given again as it was, as a page with that list costs a few milliseconds of
    escaping and joining otherwise. Any other list of choices is drawn each time."""

    #: Most drawings kept (a list of 250 countries is about 10 KB of HTML).
    KEPT = 256

    def __init__(self):
        super().__init__()
        self._kept = {}

    def __call__(self, field, **kwargs):
        choices = field.choices
        if not isinstance(choices, tuple):
            return super().__call__(field, **kwargs)
        flags = getattr(field, "flags", {})
        key = (
            id(choices),
            field.data if isinstance(field.data, str | None) else repr(field.data),
            field.name,
            field.id,
            tuple(getattr(flags, name, None) for name in self.validation_attrs),
            tuple(sorted((name, str(value)) for name, value in kwargs.items())),
        )
        found = self._kept.get(key)
        if found is None or found[0] is not choices:
            if len(self._kept) >= self.KEPT:
                self._kept.clear()
            found = self._kept[key] = (choices, super().__call__(field, **kwargs))
        return found[1]
