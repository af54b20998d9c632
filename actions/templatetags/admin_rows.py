"""{% fast_result_list cl %}: Django admin's {% result_list cl %}, with each row's cells written in one go.

Django's own rows (admin_list.items_for_result) look every column up again for every row: the field
by name, the empty value's text, the link's URL (a reverse() and the preserved filters parsed and
written again), a format_html per cell, then a template loop over the cells. That was most of a
100-row page's cost: a row cost ~0.25 ms, so a search that lists 3 runs at 10^3 runs and 100 at
10^6 grew 2.6-3.2x on rows alone (bench/README.md, figure 5). Here each column is looked up once
per page; a row is then each column's value, formatted as Django formats it (the same functions),
and its cells joined into one string. A column's text is reused within the page for a value seen
before (a user, a status), and the change link is the page's one link with the row's key in it.

The HTML is Django's own, cell for cell (tests/test_runs_admin.py compares them); anything this does
not cover (editable lists, pop-ups, a column that follows relations) is left to Django, whole page.
"""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Callable

from django import template
from django.conf import settings
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    _coerce_field_name,
    result_headers,
    result_hidden_fields,
    results,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    _get_non_gfk_field,
    display_for_field,
    display_for_value,
    quote,
)
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import DateFormat, re_escaped, re_formatchars
from django.utils.formats import get_format
from django.utils.functional import Promise
from django.utils.safestring import SafeString

register = template.Library()

# A key that reverse() and the preserved filters carry through unchanged, replaced by each row's own.
_KEY = "0fastrowkey0"
_PLAIN_KEY = re.compile(r"[A-Za-z0-9-]+")  # a quoted key that reverse() writes as it is (a UUID's)

Cell = Callable[[models.Model], str]


@register.inclusion_tag("admin/change_list_results.html")
def fast_result_list(cl) -> dict:
    """What {% result_list cl %} gives its template, the rows written by fast_results."""
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": fast_results(cl),
    }


def fast_results(cl) -> list:
    """The rows of Django's results(cl), each one string of cells (the template joins them alike)."""
    cells = page_cells(cl)
    if cells is None:
        return list(results(cl))
    return [ResultList(None, [SafeString("".join([cell(row) for cell in cells]))]) for row in cl.result_list]


def page_cells(cl) -> list[Cell] | None:
    """One function per column, each writing that column's cell of a row; None: leave it to Django."""
    if cl.formset or cl.is_popup or cl.to_field:
        return None
    model_admin = cl.model_admin
    empty = model_admin.get_empty_value_display()
    cells: list[Cell] = []
    first = True
    for index, name in enumerate(cl.list_display):
        classes = [f"field-{_coerce_field_name(name, index)}"]
        linked = cl.list_display_links is not None and (
            (first and not cl.list_display_links) or name in cl.list_display_links
        )
        try:
            field = _get_non_gfk_field(cl.lookup_opts, name)
        except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
            field = None
        text: Text
        if field is None:
            if not callable(name) and (LOOKUP_SEP in name or name == "__str__" or not hasattr(model_admin, name)):
                return None  # a model's method or property, or a related object's field: Django's own way
            attr = name if callable(name) else getattr(model_admin, name)
            if name == "action_checkbox":
                classes = ["action-checkbox"]
            text = callable_text(attr, getattr(attr, "empty_value_display", empty))
        elif field.auto_created:
            return None
        else:
            if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
                classes.append("nowrap")
            if isinstance(field.remote_field, models.ManyToOneRel):
                text = related_text(field, empty)
            else:
                text = field_text(field, empty, linked)
        if linked:
            href = link_writer(cl)
            if href is None:
                return None
            cells.append(linked_cell("th" if first else "td", classes, text, href))
            first = False
        else:
            cells.append(plain_cell(classes, text))
    return cells


def escaped(value) -> str:
    """conditional_escape(value), without the wrapper that looks for lazy arguments on every call."""
    if isinstance(value, Promise):
        value = str(value)
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


# A column's text for a row, escaped for HTML, and whether its value is a date or time (Django then
# adds "nowrap" to a callable's cell).
Text = Callable[[models.Model], tuple[str, bool]]


def callable_text(attr, empty: str) -> Text:
    """A ModelAdmin method's or a callable's text, as display_for_value writes it."""
    boolean = getattr(attr, "boolean", False)

    def text(row):
        try:
            value = attr(row)
        except ObjectDoesNotExist:
            return escaped(empty), False
        shown = escaped(display_for_value(value, empty, boolean))
        return shown, isinstance(value, (datetime.date, datetime.time))

    return text


def related_text(field, empty: str) -> Text:
    """A ForeignKey's text: the related object's str(), written once for every row that names it."""
    seen: dict = {None: escaped(empty)}

    def text(row):
        key = getattr(row, field.attname)
        if key not in seen:
            try:
                seen[key] = escaped(getattr(row, field.name))
            except ObjectDoesNotExist:
                return escaped(empty), False
        return seen[key], False

    return text


def field_text(field, empty: str, linked: bool) -> Text:
    """A model field's text as display_for_field writes it; a value seen before in the page, reused."""

    def shown(value):
        return escaped(display_for_field(value, field, empty, avoid_link=linked))

    if isinstance(field, models.DateTimeField):
        return datetime_text(field, shown)
    if isinstance(field, models.JSONField):  # unhashable
        return lambda row: (shown(getattr(row, field.attname)), False)
    if type(field) in (models.CharField, models.TextField) and not field.choices and field.name != "password":
        # What display_for_field does with such a field's text: stripped; empty, the empty value's text.
        nothing = escaped(empty)

        def string(row):
            value = getattr(row, field.attname)
            if type(value) is not str:
                return shown(value), False
            value = value.strip()
            return (html.escape(value) if value else nothing), False

        return string
    seen: dict = {}

    def text(row):
        value = getattr(row, field.attname)
        try:
            return seen[value], False
        except KeyError:
            seen[value] = shown(value)
            return seen[value], False
        except TypeError:  # unhashable
            return shown(value), False

    return text


# Format characters (django.utils.dateformat) whose text follows from the local date alone, or from
# the hour and minute alone. A format with any other (seconds, the time zone) is written whole.
DATE_CHARS = frozenset("bdDEFjlLmMnNoStwWyYz")
TIME_CHARS = frozenset("aAfgGhHiP")


def datetime_text(field, shown: Callable[[object], str]) -> Text:
    """A date and time as display_for_field writes it (localize(template_localtime(value))), the
    format's pieces that follow from the local date written once per date in the page and those that
    follow from the hour and minute once per minute: a DateFormat per row cost ~60 µs, half a row."""
    layout = format_layout(get_format("DATETIME_FORMAT"))
    if layout is None or not settings.USE_TZ:
        return lambda row: (shown(getattr(row, field.attname)), False)
    template, date_chars, time_chars = layout
    zone = timezone.get_current_timezone()
    dates: dict = {}
    times: dict = {}

    def text(row):
        value = getattr(row, field.attname)
        if not isinstance(value, datetime.datetime) or timezone.is_naive(value):
            return shown(value), False
        local = value.astimezone(zone)
        day, clock = dates.get(local.date()), times.get((local.hour, local.minute))
        if day is None or clock is None:
            written = DateFormat(local)
            if day is None:
                day = dates[local.date()] = [escaped(str(getattr(written, c)())) for c in date_chars]
            if clock is None:
                clock = times[local.hour, local.minute] = [escaped(str(getattr(written, c)())) for c in time_chars]
        return template.format(*day, *clock), False

    return text


def format_layout(format_string: str) -> tuple[str, list[str], list[str]] | None:
    """A date format as a str.format template ({0}...: its date pieces, then its time pieces, the text
    between them escaped for HTML) and the two lists of format characters; None if it has others."""
    date_chars: list[str] = []
    time_chars: list[str] = []
    parts: list[str | tuple[str, int]] = []  # text, or (kind, its index among that kind's characters)
    # As dateformat.Formatter.format reads a format: odd pieces are format characters.
    for index, piece in enumerate(re_formatchars.split(str(format_string))):
        if index % 2:
            if piece in DATE_CHARS:
                parts.append(("date", len(date_chars)))
                date_chars.append(piece)
            elif piece in TIME_CHARS:
                parts.append(("time", len(time_chars)))
                time_chars.append(piece)
            else:
                return None
        elif piece:
            literal = escaped(re_escaped.sub(r"\1", piece))
            parts.append(literal.replace("{", "{{").replace("}", "}}"))

    def slot(part: str | tuple[str, int]) -> str:
        if isinstance(part, str):
            return part
        kind, number = part
        return "{" + str(number if kind == "date" else len(date_chars) + number) + "}"

    template = "".join(slot(part) for part in parts)
    return template, date_chars, time_chars


def link_writer(cl) -> Callable[[models.Model], str] | None:
    """A row's change link, as url_for_result and add_preserved_filters write it, escaped for HTML:
    the page's one link with the row's key in it."""
    context = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}
    try:
        url = reverse(
            f"admin:{cl.opts.app_label}_{cl.opts.model_name}_change",
            args=(_KEY,),
            current_app=cl.model_admin.admin_site.name,
        )
    except NoReverseMatch:
        return None
    parts = str(escaped(add_preserved_filters(context, url))).split(_KEY)
    if len(parts) != 2:
        return None
    before, after = parts

    def href(row):
        key = str(quote(getattr(row, cl.pk_attname)))
        if _PLAIN_KEY.fullmatch(key):
            return before + key + after
        return escaped(add_preserved_filters(context, cl.url_for_result(row)))

    return href


def plain_cell(classes: list[str], text: Text) -> Cell:
    plain = f'<td class="{" ".join(classes)}">'
    dated = f'<td class="{" ".join([*classes, "nowrap"])}">'

    def cell(row):
        shown, is_date = text(row)
        return (dated if is_date else plain) + shown + "</td>"

    return cell


def linked_cell(tag: str, classes: list[str], text: Text, href: Callable[[models.Model], str]) -> Cell:
    plain = f'<{tag} class="{" ".join(classes)}"><a href="'
    dated = f'<{tag} class="{" ".join([*classes, "nowrap"])}"><a href="'
    end = f"</a></{tag}>"

    def cell(row):
        shown, is_date = text(row)
        return (dated if is_date else plain) + href(row) + '">' + shown + end

    return cell
