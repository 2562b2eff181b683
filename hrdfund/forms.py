"""The base of every form a page posts: its CSRF token is one hidden field named
``csrf_token``, whatever the form's prefix, and carries no id.

``csrf_token`` is the name Flask-WTF reads and the one proxies and scanners look for. A
page holds several forms (a case page a dozen), each with its token: an id on the token
would repeat on the page, so it has none (nothing labels or points at it).
"""

from flask_wtf import FlaskForm
from wtforms.csrf.core import CSRFTokenField
from wtforms.widgets import HiddenInput


class TokenInput(HiddenInput):
    """A hidden input without an id."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", False)
        return super().__call__(field, **kwargs)


class PageForm(FlaskForm):
    """A form of a page; its CSRF token is named ``csrf_token`` even under a prefix."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            """Bind the CSRF token without the form's prefix, to render without an id;
            every other field as usual."""
            if issubclass(unbound_field.field_class, CSRFTokenField):
                options = {**options, "prefix": ""}
                return unbound_field.bind(form=form, widget=TokenInput(), **options)
            return unbound_field.bind(form=form, **options)
