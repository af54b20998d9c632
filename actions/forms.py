"""Forms: the employee's run form built from an action's parameters, and the curators' admin forms.

One function, `parameter_field`, turns an ActionParameter into a form field. The employee's form uses
it to validate what is typed; the admin uses the very same field to check that a parameter's default
passes its own validation, so what a curator saves is what an employee can submit.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.timesince import timesince

from actions.models import ActionParameter, Device, RemoteAction

# A parameter's name is sent to Nexthink as written, and a remote action script reads it as a
# PowerShell parameter: an identifier, compared without regard to case.
PARAMETER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Without a curator's max length, a text value is still bounded.
TEXT_MAX_LENGTH = 1000
TEXTAREA_MAX_LENGTH = 4000
DEVICE_UID_RE = re.compile(r"^[0-9a-f]{32}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
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


def single_line(value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValidationError("Enter a single line.", code="invalid")


def parameter_field(param: ActionParameter) -> forms.Field:
    """The form field that validates one parameter, exactly as the employee's form does."""
    common = {"label": param.label, "help_text": param.help_text, "required": param.required}
    kind = param.kind
    if kind in TEXT_KINDS:
        is_textarea = kind == ActionParameter.Kind.TEXTAREA
        cap = TEXTAREA_MAX_LENGTH if is_textarea else TEXT_MAX_LENGTH
        validators = [] if is_textarea else [single_line]
        if param.regex:
            validators.append(
                FullMatchRegexValidator(param.regex, param.regex_message or "Enter a value in the expected format.")
            )
        field_class = MultiLineField if is_textarea else forms.CharField
        return field_class(
            max_length=min(param.max_length or cap, cap),
            widget=forms.Textarea(attrs={"rows": 4}) if is_textarea else forms.TextInput(),
            validators=validators,
            **common,
        )
    if kind == ActionParameter.Kind.CHOICE:
        choices = parse_choices(param.choices)
        if not param.required or not param.default:
            choices = [("", "Choose…" if param.required else "(none)"), *choices]
        return forms.ChoiceField(
            choices=choices,
            error_messages={"invalid_choice": "Choose one of the options in the list."},
            **common,
        )
    if kind == ActionParameter.Kind.BOOLEAN:
        # A checkbox always has an answer: ticked is "true", not ticked is "false".
        common["required"] = False
        return forms.BooleanField(**common)
    if kind == ActionParameter.Kind.INTEGER:
        return forms.IntegerField(min_value=param.min_value, max_value=param.max_value, **common)
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
        errors["name"] = (
            "Use the name exactly as the script declares it: letters, digits and underscores, "
            "not starting with a digit, no spaces."
        )
    if param.regex:
        if kind not in TEXT_KINDS:
            errors["regex"] = "Only text parameters use a validation regex; clear it or change the type."
        else:
            try:
                re.compile(param.regex)
            except re.error as exc:
                errors["regex"] = f"This regex does not compile: {exc}."
    if param.regex_message and not param.regex:
        errors["regex_message"] = "A regex error message needs a validation regex."
    if param.max_length is not None:
        cap = TEXTAREA_MAX_LENGTH if kind == ActionParameter.Kind.TEXTAREA else TEXT_MAX_LENGTH
        if kind not in TEXT_KINDS:
            errors["max_length"] = "Only text parameters have a max length; clear it or change the type."
        elif param.max_length > cap:
            errors["max_length"] = f"At most {cap} characters for this type."
    if kind != ActionParameter.Kind.INTEGER:
        for field in ("min_value", "max_value"):
            if getattr(param, field) is not None:
                errors[field] = "Only integer parameters have a minimum and a maximum; clear it or change the type."
    elif param.min_value is not None and param.max_value is not None and param.min_value > param.max_value:
        errors["max_value"] = "The maximum is smaller than the minimum."
    if kind == ActionParameter.Kind.CHOICE:
        choices = parse_choices(param.choices)
        values = [value for value, _ in choices]
        if not choices:
            errors["choices"] = "A choice needs at least one option: one per line, as `value` or `value|Label`."
        elif "" in values:
            errors["choices"] = "Every option needs a value before the `|`."
        elif len(set(values)) != len(values):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            errors["choices"] = f"Each value may appear once; repeated: {', '.join(duplicates)}."
    elif param.choices.strip():
        errors["choices"] = "Only choice parameters have options; clear them or change the type."
    if param.default and not errors.keys() & {"regex", "choices", "max_length", "min_value", "max_value"}:
        if kind == ActionParameter.Kind.BOOLEAN:
            if param.default not in BOOLEAN_VALUES:
                errors["default"] = 'A yes/no default is "true" or "false".'
        else:
            try:
                parameter_field(param).clean(param.default)
            except ValidationError as exc:
                errors["default"] = "The default does not pass this parameter's own validation: " + " ".join(
                    exc.messages
                )
    return errors


def remote_action_errors(action: RemoteAction) -> dict[str, str]:
    """Rules for an action beyond its model fields; shared by the admin and import_catalog."""
    errors: dict[str, str] = {}
    if action.enabled and is_placeholder_uid(action.nexthink_uid):
        errors["nexthink_uid"] = (
            "This is a placeholder from “Duplicate”: set the remote action's real UID before enabling it."
        )
    if action.timeout_seconds is not None and action.timeout_seconds > settings.NEXTHINK_MAX_TIMEOUT_SECONDS:
        errors["timeout_seconds"] = f"At most {settings.NEXTHINK_MAX_TIMEOUT_SECONDS} seconds."
    return errors


def placeholder_uid() -> uuid.UUID:
    return uuid.UUID(PLACEHOLDER_UID_PREFIX + "8" + uuid.uuid4().hex[:3] + "-" + uuid.uuid4().hex[:12])


def is_placeholder_uid(uid) -> bool:
    return str(uid or "").lower().startswith(PLACEHOLDER_UID_PREFIX)


# --- Admin forms -------------------------------------------------------------------------------


class RemoteActionAdminForm(forms.ModelForm):
    class Meta:
        model = RemoteAction
        fields = [
            "name",
            "slug",
            "nexthink_uid",
            "enabled",
            "category",
            "icon",
            "display_order",
            "featured",
            "summary",
            "description",
            "groups",
            "confirmation_text",
            "message_before",
            "message_after",
            "timeout_seconds",
            "engines",
            "cooldown_minutes",
            "daily_limit_per_user",
        ]
        help_texts = {
            "nexthink_uid": "In Finder: right-click the remote action, Export > Remote action Uid to clipboard.",
            "enabled": "Only enabled actions appear to employees.",
        }

    def clean(self):
        cleaned = super().clean()
        probe = RemoteAction(
            enabled=cleaned.get("enabled", False),
            nexthink_uid=cleaned.get("nexthink_uid"),
            timeout_seconds=cleaned.get("timeout_seconds"),
        )
        for field, message in remote_action_errors(probe).items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


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
]


class ActionParameterAdminForm(forms.ModelForm):
    class Meta:
        model = ActionParameter
        fields = PARAMETER_FIELDS
        help_texts = {
            "name": "Exactly as the remote action's script declares it (e.g. DaysToKeep).",
            "regex": "The whole value must match (text types only). Example: [A-Za-z0-9._-]+",
            "default": 'Prefilled for the employee. Yes/no: "true" or "false". Must pass the validation below.',
            "required": "Yes/no parameters always send an answer, so this has no effect for them.",
        }

    def clean(self):
        cleaned = super().clean()
        probe = ActionParameter(**{f: cleaned.get(f) for f in PARAMETER_FIELDS if f in cleaned})
        for field in ("choices", "default", "regex", "regex_message", "help_text"):
            if getattr(probe, field) is None:
                setattr(probe, field, "")
        if not probe.kind:
            return cleaned
        for field, message in parameter_definition_errors(probe).items():
            if field not in self.errors:
                self.add_error(field, message)
        return cleaned


class ActionParameterFormSet(forms.BaseInlineFormSet):
    """Names are unique per action, compared as the script compares them (without case)."""

    def clean(self):
        super().clean()
        seen: dict[str, str] = {}
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            name = form.cleaned_data.get("name")
            if not name:
                continue
            key = name.lower()
            if key in seen:
                form.add_error(
                    "name", f"Another parameter of this action is already named “{seen[key]}” (names ignore case)."
                )
            else:
                seen[key] = name


# --- The employee's form -----------------------------------------------------------------------


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


def device_label(device: Device) -> str:
    if device.last_seen_at:
        return f"{device.name} (last seen {timesince(device.last_seen_at, timezone.now())} ago)"
    return device.name


class ActionRunForm(forms.Form):
    """The form of one action: its parameters, the device, a confirmation if asked, an idempotency key.

    Parameter fields are named `param_<Nexthink name>` so they never clash with the form's own fields;
    `nexthink_params()` maps them back and is the only way values leave the form.
    """

    PARAM_PREFIX = "param_"

    device = forms.CharField(
        label="Device",
        max_length=32,
        error_messages={"required": "Choose the device to fix."},
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, action: RemoteAction, devices: Sequence[Device], data=None, **kwargs):
        super().__init__(data=data, **kwargs)
        self.action = action
        self.devices = list(devices)
        self.parameters: list[ActionParameter] = list(action.parameters.all())
        self._build_device_field()
        self.fields["idempotency_key"].initial = new_idempotency_key()
        param_fields = {}
        for param in self.parameters:
            field = parameter_field(param)
            field.initial = parameter_initial(param)
            param_fields[self.PARAM_PREFIX + param.name] = field
        # Parameters first, in the curator's order; then the device; then the confirmation.
        device_field = self.fields.pop("device")
        key_field = self.fields.pop("idempotency_key")
        self.fields.update(param_fields)
        self.fields["device"] = device_field
        if action.confirmation_text:
            self.fields["confirm"] = forms.BooleanField(
                label="I understand and want to run this now",
                help_text=action.confirmation_text,
                error_messages={"required": "Tick the box to confirm before running this action."},
            )
        self.fields["idempotency_key"] = key_field

    def _build_device_field(self) -> None:
        field = self.fields["device"]
        if len(self.devices) > 1:
            field.label = "Device to fix"
            # Radio buttons among the employee's own devices; the field still accepts any well-formed
            # UID, and the view asks devices.device_for_user() whether it is really theirs.
            field.widget = forms.RadioSelect(choices=[(d.uid, device_label(d)) for d in self.devices])
        else:
            field.widget = forms.HiddenInput()
        if self.devices:
            field.initial = self.devices[0].uid

    def clean_device(self) -> str:
        uid = self.cleaned_data["device"]
        if not DEVICE_UID_RE.fullmatch(uid):
            raise ValidationError("Choose one of your devices.", code="invalid")
        return uid

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        if not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise ValidationError("This form has expired; reload the page and try again.", code="invalid")
        return key

    def parameter_bound_fields(self) -> list[forms.BoundField]:
        return [self[self.PARAM_PREFIX + p.name] for p in self.parameters]

    def nexthink_params(self) -> dict[str, str]:
        """The values to send: only this action's parameter names, every value a string."""
        if not self.is_valid():
            raise ValueError("nexthink_params() needs a valid form.")
        return {
            param.name: as_nexthink_string(param, self.cleaned_data.get(self.PARAM_PREFIX + param.name))
            for param in self.parameters
        }
