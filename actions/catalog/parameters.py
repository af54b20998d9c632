"""Parameter rules: one ActionParameter becomes one form field, and the rules a definition must meet.

`parameter_field` turns a parameter into the field that validates what an employee types; the admin
uses the very same field to check that a default passes, and a run's parameters are checked against
the action's definition of today with `validate_params` (the employee's form, admin retry, any caller).
"""

from __future__ import annotations

import re
import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils.translation import gettext, gettext_lazy

from actions.models import ActionParameter, RemoteAction
from actions.platforms import UNKNOWN, uses

# PowerShell parameter: an identifier, compared without regard to case.
PARAMETER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Without a curator's max length, a text value is still bounded.
TEXT_MAX_LENGTH = 1000
TEXTAREA_MAX_LENGTH = 4000
# "Duplicate" gives the copy a UID of this shape until the curator sets the real one (see catalog admin).
PLACEHOLDER_UID_PREFIX = "00000000-0000-4000-"
BOOLEAN_VALUES = {"true": True, "false": False}

TEXT_KINDS = {ActionParameter.Kind.TEXT, ActionParameter.Kind.TEXTAREA}

# --- Parameter definitions ---------------------------------------------------------------------


def parse_choices(text: str) -> list[tuple[str, str]]:
    """`value` or `value|Label`, one per line; blank lines are skipped."""
    choices = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        value, sep, label = line.partition("|")
        value = value.strip()
        choices.append((value, label.strip() if sep and label.strip() else value))
    return choices


class FullMatchRegexValidator:
    """The whole value must match the curator's pattern (not just a part of it)."""

    def __init__(self, pattern: str, message: str):
        self.regex = re.compile(pattern)
        self.message = message

    def __call__(self, value: str) -> None:
        if not self.regex.fullmatch(value):
            raise ValidationError(self.message, code="invalid")


class MultiLineField(forms.CharField):
    """Browsers send CRLF line breaks; count and send them as LF, as the browser's maxlength does."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


# Control characters that have no place in what an employee types: C0 but tab and line breaks, DEL, C1,
# and the Unicode line and paragraph separators.
# The control characters no form takes (tab, line feed and carriage return are allowed).
CONTROL_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
_CONTROL_RE = re.compile(f"[{CONTROL_CHARACTERS}]")


class PlainTextMixin(forms.Widget):
    """A refused value is shown back to the employee without its control characters: an ESC must
    not reach the page raw."""

    def format_value(self, value):
        value = super().format_value(value)
        return _CONTROL_RE.sub("\N{REPLACEMENT CHARACTER}", value) if isinstance(value, str) else value


class PlainTextInput(PlainTextMixin, forms.TextInput):
    pass


class PlainTextarea(PlainTextMixin, forms.Textarea):
    pass


def never_cut(field: forms.Field) -> forms.Field:
    """A text field the browser never cuts: no `maxlength` on the input (a browser silently drops what
    is typed or pasted beyond it, and the wrong value is sent); the server refuses a longer text with a
    message instead, and the text stays in the box to be shortened."""
    field.widget.attrs.pop("maxlength", None)
    for validator in field.validators:
        if isinstance(validator, MaxLengthValidator):
            validator.message = gettext_lazy(
                "This is %(show_value)d characters long; at most %(limit_value)d fit. Shorten it."
            )
    return field


def refuse_control_characters(value: str) -> None:
    if _CONTROL_RE.search(value):
        raise ValidationError(gettext("Remove the invisible control characters from this text."), code="invalid")


def single_line(value: str) -> None:
    """One line of plain text: no line break, and no other control character either (ESC, BEL,
    backspace... would reach the device's script and the page as they are)."""
    if "\n" in value or "\r" in value:
        raise ValidationError(gettext("Enter a single line."), code="invalid")
    if "\t" in value:
        raise ValidationError(gettext("Remove the tab from this text."), code="invalid")
    refuse_control_characters(value)


def parameter_field(param: ActionParameter) -> forms.Field:
    """The form field that validates one parameter, exactly as the employee's form does."""
    label, help_text, required = param.label, param.help_text, param.required
    kind = param.kind
    if kind in TEXT_KINDS:
        is_textarea = kind == ActionParameter.Kind.TEXTAREA
        cap = TEXTAREA_MAX_LENGTH if is_textarea else TEXT_MAX_LENGTH
        validators = [refuse_control_characters] if is_textarea else [single_line]
        if param.regex:
            validators.append(
                FullMatchRegexValidator(
                    param.regex, param.regex_message or gettext("Enter a value in the expected format.")
                )
            )
        field_class = MultiLineField if is_textarea else forms.CharField
        return never_cut(
            field_class(
                max_length=min(param.max_length or cap, cap),
                widget=PlainTextarea(attrs={"rows": 4}) if is_textarea else PlainTextInput(),
                validators=validators,
                label=label,
                help_text=help_text,
                required=required,
            )
        )
    if kind == ActionParameter.Kind.CHOICE:
        choices = parse_choices(param.choices)
        if not param.required or not param.default:
            choices = [("", "Choose…" if param.required else "(none)"), *choices]
        return forms.ChoiceField(
            choices=choices,
            error_messages={"invalid_choice": gettext("Choose one of the options in the list.")},
            label=label,
            help_text=help_text,
            required=required,
        )
    if kind == ActionParameter.Kind.BOOLEAN:
        # A checkbox always has an answer: ticked is "true", not ticked is "false".
        return forms.BooleanField(label=label, help_text=help_text, required=False)
    if kind == ActionParameter.Kind.INTEGER:
        return forms.IntegerField(
            min_value=param.min_value, max_value=param.max_value, label=label, help_text=help_text, required=required
        )
    raise ValueError(f"Unknown parameter type {kind!r}.")


def parameter_initial(param: ActionParameter):
    if param.kind == ActionParameter.Kind.BOOLEAN:
        return BOOLEAN_VALUES.get(param.default.strip().lower(), False)
    return param.default or None


def as_nexthink_string(param: ActionParameter, value) -> str:
    """Every value reaches Nexthink as a string."""
    if param.kind == ActionParameter.Kind.BOOLEAN:
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def parameter_definition_errors(param: ActionParameter) -> dict[str, str]:
    """What is wrong with a parameter's definition, by field; empty when it is sound."""
    errors: dict[str, str] = {}
    kind = param.kind
    name = param.name or ""
    if name and not PARAMETER_NAME_RE.fullmatch(name):
        errors["name"] = gettext(
            "Use the name exactly as the script declares it: letters, digits and underscores, "
            "not starting with a digit, no spaces."
        )
    if param.regex:
        if kind not in TEXT_KINDS:
            errors["regex"] = gettext("Only text parameters use a validation regex; clear it or change the type.")
        else:
            try:
                re.compile(param.regex)
            except re.error as exc:
                errors["regex"] = gettext("This regex does not compile: %(error)s.") % {"error": exc}
    if param.regex_message and not param.regex:
        errors["regex_message"] = gettext("A regex error message needs a validation regex.")
    if param.max_length is not None:
        cap = TEXTAREA_MAX_LENGTH if kind == ActionParameter.Kind.TEXTAREA else TEXT_MAX_LENGTH
        if kind not in TEXT_KINDS:
            errors["max_length"] = gettext("Only text parameters have a max length; clear it or change the type.")
        elif param.max_length > cap:
            errors["max_length"] = gettext("At most %(count)d characters for this type.") % {"count": cap}
    if kind != ActionParameter.Kind.INTEGER:
        for field in ("min_value", "max_value"):
            if getattr(param, field) is not None:
                errors[field] = gettext(
                    "Only integer parameters have a minimum and a maximum; clear it or change the type."
                )
    elif param.min_value is not None and param.max_value is not None and param.min_value > param.max_value:
        errors["max_value"] = gettext("The maximum is smaller than the minimum.")
    if kind == ActionParameter.Kind.CHOICE:
        choices = parse_choices(param.choices)
        values = [value for value, _ in choices]
        if not choices:
            errors["choices"] = gettext(
                "A choice needs at least one option: one per line, as `value` or `value|Label`."
            )
        elif "" in values:
            errors["choices"] = gettext("Every option needs a value before the `|`.")
        elif len(set(values)) != len(values):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            errors["choices"] = gettext("Each value may appear once; repeated: %(values)s.") % {
                "values": ", ".join(duplicates)
            }
    elif param.choices.strip():
        errors["choices"] = gettext("Only choice parameters have options; clear them or change the type.")
    if param.default and not errors.keys() & {"regex", "choices", "max_length", "min_value", "max_value"}:
        if kind == ActionParameter.Kind.BOOLEAN:
            if param.default not in BOOLEAN_VALUES:
                errors["default"] = gettext('A yes/no default is "true" or "false".')
        else:
            try:
                parameter_field(param).clean(param.default)
            except ValidationError as exc:
                errors["default"] = gettext("The default does not pass this parameter's own validation: %(errors)s") % {
                    "errors": " ".join(exc.messages)
                }
    return errors


def remote_action_errors(action: RemoteAction) -> dict[str, str]:
    """Rules for an action beyond its model fields; shared by the admin and import_catalog."""
    errors: dict[str, str] = {}
    if action.enabled and is_placeholder_uid(action.nexthink_uid):
        errors["nexthink_uid"] = gettext(
            "This is a placeholder from “Duplicate”: set the remote action's real UID before enabling it."
        )
    if action.kind == RemoteAction.Kind.WORKFLOW and not action.nql_id:
        errors["nql_id"] = gettext("A workflow runs by its NQL id: enter it, like #fix_vpn_connection.")
    return errors


def placeholder_uid() -> uuid.UUID:
    return uuid.UUID(PLACEHOLDER_UID_PREFIX + "8" + uuid.uuid4().hex[:3] + "-" + uuid.uuid4().hex[:12])


def is_placeholder_uid(uid) -> bool:
    return str(uid or "").lower().startswith(PLACEHOLDER_UID_PREFIX)


PARAMETER_FIELDS = [
    "name",
    "label",
    "help_text",
    "kind",
    "choices",
    "default",
    "required",
    "max_length",
    "min_value",
    "max_value",
    "regex",
    "regex_message",
    "display_order",
    "used_by_windows",
    "used_by_macos",
]


# --- A run's parameters against the action's definition of today ------------------------------


class InvalidParams(ValueError):
    """Parameters that do not pass the action's definition: nothing is stored or sent.

    `field`: the parameter's Nexthink name, when one parameter is at fault (the API names it).
    """

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def params_with_defaults(action: RemoteAction, params: dict[str, str]) -> dict[str, str]:
    """`params` with each parameter left out set as the employee's form pre-fills it (its default)."""
    filled = dict(params)
    for param in action.parameters.all():
        if param.name not in filled:
            filled[param.name] = as_nexthink_string(param, parameter_initial(param))
    return filled


def validate_params(action: RemoteAction, params: dict[str, str], platform: str = UNKNOWN) -> dict[str, str]:
    """The parameters as Nexthink will get them, checked against the action's parameters of today.

    Only the inputs the device's system uses (`platform`; unknown: all of them) are asked and sent.
    Only the action's own names (Nexthink ignores unknown ones, so a typo would silently do
    nothing), every value a string that passes its field: the same rules as the employee's form, for
    every caller (the form, the admin's retry of an old run whose choices have since changed).
    """
    definitions = [param for param in action.parameters.all() if uses(param, platform)]
    unknown = sorted(set(params) - {param.name for param in definitions})
    if unknown:
        raise InvalidParams(f"“{action.name}” has no parameter {', '.join(unknown)}.", field=unknown[0])
    if not all(isinstance(value, str) for value in params.values()):
        raise InvalidParams("Parameter values are sent to Nexthink as strings.")
    checked: dict[str, str] = {}
    for param in definitions:
        value = params.get(param.name, "")
        if param.kind == ActionParameter.Kind.BOOLEAN:
            if value not in BOOLEAN_VALUES:
                raise InvalidParams(f"{param.label}: a yes/no value is “true” or “false”.", field=param.name)
            checked[param.name] = value
            continue
        try:
            cleaned = parameter_field(param).clean(value)
        except ValidationError as exc:
            raise InvalidParams(f"{param.label}: {' '.join(exc.messages)}", field=param.name) from None
        checked[param.name] = as_nexthink_string(param, cleaned)
    return checked
