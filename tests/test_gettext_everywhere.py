"""Every word a page shows goes through gettext: a sentence typed straight into a
template or a view would stay English in every language."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Words a page may show as they are in every language: units, a time zone, file formats.
AS_THEY_ARE = {"KB", "UTC", "PDF", "CSV"}
#: Form fields: their label is their first argument.
FIELDS = {
    "StringField",
    "TextAreaField",
    "SelectField",
    "RadioField",
    "BooleanField",
    "SubmitField",
    "PasswordField",
    "IntegerField",
    "DateField",
    "FileField",
    "MoneyField",
    "RateField",
    "DecimalField",
    "SelectMultipleField",
    "EmailField",
}


def _shown_words(template):
    """The words of a template outside its Jinja expressions, tags and comments."""
    text = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", " ", template, flags=re.S)
    attributes = re.findall(r'\b(?:placeholder|title|aria-label|alt)="([^"]*)"', text)
    text = re.sub(r"<[^>]*>|&[a-z#0-9]+;", " ", text)
    words = re.findall(r"[A-Za-z][A-Za-z'’]+", " ".join([text, *attributes]))
    return [word for word in words if word not in AS_THEY_ARE]


def test_no_template_shows_words_outside_gettext():
    found = {
        str(path.relative_to(ROOT)): words
        for path in sorted((ROOT / "templates").rglob("*.html"))
        if (words := _shown_words(path.read_text()))
    }
    assert found == {}


def _literal(node):
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(c.isalpha() for c in node.value)
    )


def _untranslated(call):
    """Why ``call`` shows a literal sentence, or None."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    first = call.args[0] if call.args else None
    if name in {"flash", "ValidationError"} or name in FIELDS:
        if first is not None and _literal(first):
            return f"{name}({first.value!r})"
    if (
        name == "append"
        and isinstance(func, ast.Attribute)  # not a function of that name
        and isinstance(func.value, ast.Attribute)
        and func.value.attr in ("form_errors", "errors")
        and first is not None
        and _literal(first)
    ):
        return f"errors.append({first.value!r})"
    for keyword in call.keywords:
        if keyword.arg in ("label", "description", "placeholder") and _literal(keyword.value):
            return f"{keyword.arg}={keyword.value.value!r}"
    return None


def test_no_view_or_form_shows_a_sentence_outside_gettext():
    found = []
    for path in sorted((ROOT / "hrdfund").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and (why := _untranslated(node)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {why}")
    assert found == []
