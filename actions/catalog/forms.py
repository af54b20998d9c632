"""Forms: the employee's run form built from an action's parameters, and the curators' admin forms."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.timesince import timesince

from actions.catalog.parameters import (
    PARAMETER_FIELDS,
    as_nexthink_string,
    parameter_definition_errors,
    parameter_field,
    parameter_initial,
    remote_action_errors,
)
from actions.models import ActionParameter, Device, RemoteAction
from actions.uids import DEVICE_UID_RE

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


# --- Admin forms -------------------------------------------------------------------------------


class RemoteActionAdminForm(forms.ModelForm):
    class Meta:
        model = RemoteAction
        fields = [
            "name",
            "slug",
            "kind",
            "nexthink_uid",
            "nql_id",
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
            "ticket_category",
            "ticket_assignment_group",
        ]
        help_texts = {
            "nexthink_uid": "In Finder: right-click the remote action, Export > Remote action Uid to clipboard.",
            "enabled": "Only enabled actions appear to employees.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].required = False  # not given (an older form or script): a remote action

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or RemoteAction.Kind.REMOTE_ACTION

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        probe = RemoteAction(
            enabled=cleaned.get("enabled", False),
            nexthink_uid=cleaned.get("nexthink_uid") or "",  # "": none given, or not a valid UID
            timeout_seconds=cleaned.get("timeout_seconds"),
            kind=cleaned.get("kind") or RemoteAction.Kind.REMOTE_ACTION,
            nql_id=cleaned.get("nql_id") or "",
        )
        for field, message in remote_action_errors(probe).items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


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
        super().clean()
        cleaned = self.cleaned_data
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
        max_length=36,
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
