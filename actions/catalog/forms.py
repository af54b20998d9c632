"""Forms: the employee's run form built from an action's parameters, and the curators' admin forms."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext, gettext_lazy

from actions.catalog.parameters import (
    PARAMETER_FIELDS,
    as_nexthink_string,
    parameter_definition_errors,
    parameter_field,
    parameter_initial,
    remote_action_errors,
)
from actions.models import ActionParameter, Device, RemoteAction
from actions.platforms import UNKNOWN, fits, labels, used_by, uses
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
            "runs_on_windows",
            "runs_on_macos",
            "enabled",
            "category",
            "icon",
            "display_order",
            "featured",
            "summary",
            "description",
            "keywords",
            "groups",
            "confirmation_text",
            "message_before",
            "message_during",
            "message_after",
            "timeout_seconds",
            "engines",
            "cooldown_minutes",
            "daily_limit_per_user",
            "ticket_category",
            "ticket_assignment_group",
        ]
        help_texts = {
            "nexthink_uid": gettext_lazy(
                "In Finder: right-click the remote action, Export > Remote action Uid to clipboard."
            ),
            "enabled": gettext_lazy("Only enabled actions appear to employees."),
            # The models' own help names a command and a setting: here, in the admin's words.
            "nql_id": gettext_lazy(
                "Infinity: the remote action's NQL id, like #clear_teams_cache (“Import … from Nexthink” "
                "on the actions list fills it in)."
            ),
            "timeout_seconds": gettext_lazy("1 to 3,600 seconds. Empty: the portal's default timeout."),
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
            "name": gettext_lazy("Exactly as the remote action's script declares it (e.g. DaysToKeep)."),
            "regex": gettext_lazy("The whole value must match (text types only). Example: [A-Za-z0-9._-]+"),
            "default": gettext_lazy(
                'Prefilled for the employee. Yes/no: "true" or "false". Must pass the validation below.'
            ),
            "required": gettext_lazy("Yes/no parameters always send an answer, so this has no effect for them."),
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
                    "name",
                    gettext("Another parameter of this action is already named “%(name)s” (names ignore case).")
                    % {"name": seen[key]},
                )
            else:
                seen[key] = name


# --- The employee's form -----------------------------------------------------------------------


def devices_fitting(action: RemoteAction, devices: Sequence[Device]) -> list[Device]:
    """The devices the action can run on (its script exists for their system; an unknown system fits)."""
    return [device for device in devices if fits(action, device.platform)]


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(24)


def probably_in_use(devices: Sequence[Device]) -> Device | None:
    """Of several devices, the one seen last, if only one was seen then: the one the employee is
    probably using now."""
    seen = sorted(((d.last_seen_at, i) for i, d in enumerate(devices) if d.last_seen_at), reverse=True)
    if len(devices) < 2 or not seen or (len(seen) > 1 and seen[0][0] == seen[1][0]):
        return None
    return devices[seen[0][1]]


def device_label(device: Device) -> str:
    if device.last_seen_at:
        return gettext("%(device)s (last seen %(since)s ago)") % {
            "device": device.name,
            "since": timesince(device.last_seen_at, timezone.now()),
        }
    return device.name


class ActionRunForm(forms.Form):
    """The form of one action: its parameters, the device, a confirmation if asked, an idempotency key.

    Parameter fields are named `param_<Nexthink name>` so they never clash with the form's own fields;
    `nexthink_params()` maps them back and is the only way values leave the form.

    Only the inputs the chosen device's system uses are asked (and sent): the device in the data, or
    the only device; before a choice among devices of several systems, those any of them uses, each
    saying which system asks for it.
    """

    PARAM_PREFIX = "param_"

    device = forms.CharField(
        label=gettext_lazy("Device"),
        max_length=36,
        error_messages={"required": gettext_lazy("Choose the device to fix.")},
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, action: RemoteAction, devices: Sequence[Device], data=None, **kwargs):
        super().__init__(data=data, **kwargs)
        self.action = action
        self.devices = list(devices)
        platforms = self._platforms(data)
        self.parameters: list[ActionParameter] = [
            param for param in action.parameters.all() if any(uses(param, platform) for platform in platforms)
        ]
        self._build_device_field()
        self.fields["idempotency_key"].initial = new_idempotency_key()
        param_fields = {}
        # Inputs that only some of the devices' systems use: the page shows them for the device chosen
        # (static/js/device-inputs.js reads data-platforms and device_platforms).
        self.device_platforms = {device.uid: device.platform for device in self.devices}
        self.platform_dependent = False
        for param in self.parameters:
            field = parameter_field(param)
            field.initial = parameter_initial(param)
            if not all(uses(param, platform) for platform in platforms):
                note = gettext("Asked only for your %(systems)s devices.") % {"systems": labels(used_by(param))}
                field.help_text = f"{field.help_text} {note}".strip()
                field.widget.attrs["data-platforms"] = " ".join(sorted(used_by(param)))
                self.platform_dependent = True
            param_fields[self.PARAM_PREFIX + param.name] = field
        # Parameters first, in the curator's order; then the device; then the confirmation.
        device_field = self.fields.pop("device")
        key_field = self.fields.pop("idempotency_key")
        self.fields.update(param_fields)
        self.fields["device"] = device_field
        if action.approver_group_id is not None:
            self.fields["reason"] = forms.CharField(
                label=gettext("Why do you need this?"),
                max_length=300,
                help_text=gettext("IT approves this action before it runs; the approver reads this."),
                error_messages={"required": gettext("Say why you need this: IT approves it before it runs.")},
            )
        if action.confirmation_text:
            self.fields["confirm"] = forms.BooleanField(
                label=gettext("I understand and want to run this now"),
                help_text=action.confirmation_text,
                error_messages={"required": gettext("Tick the box to confirm before running this action.")},
            )
        self.fields["idempotency_key"] = key_field

    def _platforms(self, data) -> set[str]:
        """The systems whose inputs the form asks: the chosen device's, else those of all the devices."""
        uid = data.get("device") if data is not None else None
        chosen = next((d for d in self.devices if d.uid == uid), None)
        if chosen is None and len(self.devices) == 1:
            chosen = self.devices[0]
        if chosen is not None:
            return {chosen.platform}
        return {d.platform for d in self.devices} or {UNKNOWN}

    def _build_device_field(self) -> None:
        field = self.fields["device"]
        current = probably_in_use(self.devices)
        if len(self.devices) > 1:
            field.label = gettext("Device to fix")
            # Radio buttons among the employee's own devices; the field still accepts any well-formed
            # UID, and the view asks devices.device_for_user() whether it is really theirs.
            choices = [
                (
                    d.uid,
                    device_label(d) + (" · " + gettext("probably the one you are using now") if d is current else ""),
                )
                for d in self.devices
            ]
            field.widget = forms.RadioSelect(choices=choices)
        else:
            field.widget = forms.HiddenInput()
        if self.devices:
            field.initial = (current or self.devices[0]).uid

    def clean_device(self) -> str:
        uid = self.cleaned_data["device"]
        if not DEVICE_UID_RE.fullmatch(uid):
            raise ValidationError(gettext("Choose one of your devices."), code="invalid")
        return uid

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        if not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise ValidationError(gettext("This form has expired; reload the page and try again."), code="invalid")
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
