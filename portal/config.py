"""Strict readers for environment variables, each documented once, beside its default.

django-environ parses values, but it reads any unknown string as False for a boolean and accepts
a URL without a scheme. These wrappers make a malformed value stop start-up with a message that
names the variable (see .env.example for every variable).

Every reader takes `doc` (what the variable means), and `shown` when its default is computed (the
default as an operator reads it) and `must` when an operator has to set it: settings.py is the one
source of README's configuration tables (`python manage.py settings_table`; a test compares them).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


# --- Documentation ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variable:
    names: str  # as README shows them: `NAME`, or `NAME` / `NAME_FILE` for a secret
    shown: str  # the default, as an operator reads it
    meaning: str
    must: str  # "": has a default that suits most companies; else when an operator must set it
    section: str


VARIABLES: dict[str, Variable] = {}
_section = ["Core"]


def section(title: str) -> None:
    """The concern the variables read from here on belong to (one README table each)."""
    _section[0] = title


def describe(name: str, *, doc: str, shown: str, must: str = "") -> None:
    """Document a variable whose reader takes no documentation (EMAIL_URL's mailer)."""
    _document(name, "", doc, shown, must)


def _document(name: str, default, doc: str, shown: str | None, must: str, names: str = "") -> None:
    if shown is None:
        shown = "empty" if default in ("", [], None) else f"`{_literal(default)}`"
    VARIABLES[name] = Variable(names or f"`{name}`", shown, doc, must, _section[0])


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def markdown_tables() -> str:
    """README's configuration tables: one per section, in the order settings.py reads them."""
    out = []
    for title in dict.fromkeys(v.section for v in VARIABLES.values()):
        out += [f"#### {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for v in VARIABLES.values():
            if v.section == title:
                must = f"**must set** {v.must}".strip() if v.must else ""
                meaning = f"{must}: {v.meaning}" if must and v.meaning else must or v.meaning
                out.append(f"| {v.names} | {v.shown} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def is_set(name: str) -> bool:
    return _raw(name) != ""


def _raw(name: str) -> str:
    return env.str(name, default="").strip()


def get_str(name: str, default: str = "", *, doc: str, shown: str | None = None, must: str = "") -> str:
    _document(name, default, doc, shown, must)
    return _raw(name) or default


def get_bool(name: str, default: bool, *, doc: str, shown: str | None = None, must: str = "") -> bool:
    _document(name, default, doc, shown, must)
    raw = _raw(name)
    if raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), got {raw!r}.")


def get_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    doc: str,
    shown: str | None = None,
    must: str = "",
) -> int:
    _document(name, default, doc, shown, must)
    raw = _raw(name)
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}.")
    return value


def get_list(name: str, default: list[str], *, doc: str, shown: str | None = None, must: str = "") -> list[str]:
    _document(name, default, doc, shown, must)
    raw = _raw(name)
    if raw == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or (parts.scheme in ("http", "https") and not parts.hostname):
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {value!r}."
        )
    return value


def get_url(
    name: str,
    default: str,
    schemes: tuple[str, ...] = ("http", "https"),
    *,
    doc: str,
    shown: str | None = None,
    must: str = "",
) -> str:
    _document(name, default, doc, shown, must)
    return check_url(name, _raw(name) or default, schemes)


def get_optional_url(name: str, *, doc: str, shown: str | None = None, must: str = "") -> str:
    """A URL, or empty when unset."""
    _document(name, "", doc, shown, must)
    value = _raw(name)
    return check_url(name, value, ("http", "https")) if value else ""


def get_choice(name: str, default: str, choices, *, doc: str, upper: bool = False) -> str:
    """One of `choices` (case-insensitive); anything else stops start-up."""
    _document(name, default, doc, None, "")
    raw = _raw(name) or default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}.")
    return value


def get_origins(name: str, *, doc: str, must: str = "") -> list[str]:
    return [check_url(name, origin, ("http", "https")) for origin in get_list(name, [], doc=doc, must=must)]


def get_secret(name: str, default: str = "", *, doc: str, shown: str | None = None, must: str = "") -> str:
    """NAME, or the contents of the file named by NAME_FILE (for Docker/systemd secrets)."""
    _document(name, "", doc, shown, must, names=f"`{name}` / `{name}_FILE`")
    file_name = _raw(f"{name}_FILE")
    if file_name:
        if is_set(name):
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name!r}: {exc.strerror}.") from None
    return _raw(name) or default


def get_db(name: str, default: str, *, doc: str, shown: str, must: str = "") -> dict:
    _document(name, default, doc, shown, must)
    raw = _raw(name) or default
    scheme = raw.split(":", 1)[0]
    if scheme not in DATABASE_SCHEMES:
        raise ImproperlyConfigured(f"{name} must start with sqlite:// or postgres://, got {scheme!r}.")
    try:
        config = env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"{name} is not a database URL ({exc}).") from None
    return config


EMAIL_SCHEMES = ("smtp", "smtps", "smtp+tls", "smtp+ssl", "consolemail", "filemail", "memorymail", "dummymail")


def get_mailer(name: str, default: str) -> dict:
    """A MAILERS entry from one URL (django-environ's e-mail schemes), refused if malformed.

    smtp://user:password@host:587 (smtp+tls://, smtps:// ...), filemail:///path, consolemail://, dummymail://.
    Documented by its caller (it is read only when set, or with DEBUG).
    """
    raw = _raw(name) or default
    scheme = raw.split(":", 1)[0]
    if scheme not in EMAIL_SCHEMES:
        raise ImproperlyConfigured(f"{name} must start with one of {', '.join(s + '://' for s in EMAIL_SCHEMES)}.")
    try:
        parsed = env.email_url_config(raw)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ImproperlyConfigured(f"{name} is not an e-mail URL ({exc}).") from None
    options = {
        option: parsed[key]
        for key, option in _MAILER_OPTIONS.items()
        if parsed.get(key) not in (None, "") and key != "EMAIL_FILE_PATH"
    }
    if scheme == "filemail":
        # django-environ drops the leading "/" of an absolute path; take it as written.
        options["file_path"] = raw.split("://", 1)[1] or "."
    if scheme.startswith("smtp"):
        options["timeout"] = 10
    return {"BACKEND": parsed["EMAIL_BACKEND"], "OPTIONS": options}


_MAILER_OPTIONS = {
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
    "EMAIL_FILE_PATH": "file_path",
}


def default_var_dir(base_dir: Path, *, debug: bool) -> Path:
    """PORTAL_VAR_DIR when unset: `var/`, and `var/infinity/` with DEBUG on Nexthink Infinity.

    Each platform's demo thus keeps its own SQLite file, embedded broker, dev key and mail: the
    classic demo's actions and devices never show up in the Infinity demo, nor the other way round,
    and switching back finds each as it was. Classic keeps `var/` as it always had. Read before
    NEXTHINK_PLATFORM is checked (and documented) further down settings.py; a bad value stops there.
    """
    infinity = env.str("NEXTHINK_PLATFORM", default="").strip().lower() == "infinity"
    return base_dir / "var" / "infinity" if debug and infinity else base_dir / "var"


def local_secret_key(path: Path) -> str:
    """A random key kept in var/ for development; never used when DEBUG is off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def get_template(
    name: str, default: str, *, allowed: set[str] | None = None, doc: str, shown: str | None = None
) -> str:
    """A str.format template naming plain fields only (no attribute access, indexing or format specs)."""
    _document(name, default, doc, shown, "")
    template = _raw(name) or default
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a valid template ({exc}): {template!r}.") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if not field.isidentifier() or field.startswith("_") or spec or conversion:
            raise ImproperlyConfigured(f"{name}: {{{field}}} must be a plain attribute name, in {template!r}.")
        if allowed is not None and field not in allowed:
            raise ImproperlyConfigured(f"{name}: unknown field {{{field}}}; use {', '.join(sorted(allowed))}.")
    return template


def get_map(name: str, *, doc: str) -> dict[str, str]:
    """Comma-separated `key=value` pairs; a bare `key` maps to itself. Keys and values are trimmed."""
    _document(name, "", doc, None, "")
    mapping: dict[str, str] = {}
    for item in (item.strip() for item in _raw(name).split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), (value.strip() if sep else key.strip())
        if not key or not value:
            raise ImproperlyConfigured(f"{name}: {item!r} must be `value` or `value=group name`.")
        if key in mapping:
            raise ImproperlyConfigured(f"{name}: {key!r} is listed twice.")
        mapping[key] = value
    return mapping
