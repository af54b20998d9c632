"""The employee's run form built from an action's parameters: each type, each rejection, the output."""

import pytest

from actions.catalog.forms import ActionRunForm
from actions.models import ActionParameter
from tests.factories import make_action, make_device, make_parameter

Kind = ActionParameter.Kind
UID = "da2add909a144e8235453f88dc45172f"
KEY = "k" * 32


@pytest.fixture
def action(db):
    return make_action(name="Clean up disk", slug="clean-up-disk")


@pytest.fixture
def laptop(alice):
    return make_device(alice, uid=UID, name="LAPTOP-ALICE")


def bound(action, laptop, **values):
    data = {"device": UID, "idempotency_key": KEY} | values
    return ActionRunForm(action, [laptop], data=data)


def test_it_sends_text_as_typed_without_surrounding_spaces(action, laptop):
    make_parameter(action, name="Folder", label="Folder", kind=Kind.TEXT)

    form = bound(action, laptop, param_Folder="  Downloads  ")

    assert form.is_valid(), form.errors
    assert form.nexthink_params() == {"Folder": "Downloads"}


def test_it_rejects_text_longer_than_its_max_length(action, laptop):
    make_parameter(action, name="Folder", label="Folder", max_length=5)

    form = bound(action, laptop, param_Folder="abcdef")

    assert not form.is_valid()
    assert form.errors["param_Folder"] == ["Ensure this value has at most 5 characters (it has 6)."]


def test_it_bounds_text_without_a_max_length(action, laptop):
    make_parameter(action, name="Folder", label="Folder")

    form = bound(action, laptop, param_Folder="x" * 1001)

    assert not form.is_valid()
    assert "at most 1000 characters" in form.errors["param_Folder"][0]


def test_it_rejects_a_line_break_in_single_line_text(action, laptop):
    make_parameter(action, name="Folder", label="Folder")

    form = bound(action, laptop, param_Folder="a\nb")

    assert form.errors["param_Folder"] == ["Enter a single line."]


def test_it_rejects_text_that_does_not_match_the_whole_regex_with_its_message(action, laptop):
    make_parameter(action, name="Ticket", label="Ticket", regex=r"INC[0-9]{4}", regex_message="Like INC1234.")

    assert bound(action, laptop, param_Ticket="INC1234").is_valid()
    assert bound(action, laptop, param_Ticket="INC12345").errors["param_Ticket"] == ["Like INC1234."]
    assert bound(action, laptop, param_Ticket="xINC1234").errors["param_Ticket"] == ["Like INC1234."]


def test_it_keeps_line_breaks_in_multi_line_text_as_lf(action, laptop):
    make_parameter(action, name="Notes", label="Notes", kind=Kind.TEXTAREA, max_length=9)

    form = bound(action, laptop, param_Notes="one\r\ntwo\r\n3")

    assert form.is_valid(), form.errors
    assert form.nexthink_params() == {"Notes": "one\ntwo\n3"}


def test_it_accepts_a_choice_from_the_list_only(action, laptop):
    make_parameter(action, name="Mode", label="Mode", kind=Kind.CHOICE, choices="quick|Quick scan\nfull|Full scan")

    ok = bound(action, laptop, param_Mode="full")
    forged = bound(action, laptop, param_Mode="everything")

    assert ok.is_valid() and ok.nexthink_params() == {"Mode": "full"}
    assert forged.errors["param_Mode"] == ["Choose one of the options in the list."]


def test_it_shows_choice_labels_and_asks_to_choose_when_there_is_no_default(action, laptop):
    make_parameter(action, name="Mode", label="Mode", kind=Kind.CHOICE, choices="quick|Quick scan\nfull", required=True)

    form = ActionRunForm(action, [laptop])

    assert form.fields["param_Mode"].choices == [("", "Choose…"), ("quick", "Quick scan"), ("full", "full")]
    assert bound(action, laptop, param_Mode="").errors["param_Mode"] == ["This field is required."]


def test_it_sends_yes_no_as_true_or_false(action, laptop):
    make_parameter(action, name="Restart", label="Restart afterwards", kind=Kind.BOOLEAN, default="true")

    ticked = bound(action, laptop, param_Restart="on")
    unticked = bound(action, laptop)

    assert ActionRunForm(action, [laptop]).fields["param_Restart"].initial is True
    assert ticked.is_valid() and ticked.nexthink_params() == {"Restart": "true"}
    assert unticked.is_valid() and unticked.nexthink_params() == {"Restart": "false"}


def test_it_sends_integers_as_decimal_strings_within_their_range(action, laptop):
    make_parameter(action, name="Days", label="Days to keep", kind=Kind.INTEGER, min_value=1, max_value=30)

    ok = bound(action, laptop, param_Days="07")

    assert ok.is_valid() and ok.nexthink_params() == {"Days": "7"}
    assert bound(action, laptop, param_Days="0").errors["param_Days"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert bound(action, laptop, param_Days="31").errors["param_Days"] == [
        "Ensure this value is less than or equal to 30."
    ]
    assert bound(action, laptop, param_Days="seven").errors["param_Days"] == ["Enter a whole number."]


def test_it_requires_required_parameters_and_sends_optional_ones_empty(action, laptop):
    make_parameter(action, name="Folder", label="Folder", required=True)
    make_parameter(action, name="Note", label="Note", required=False)
    make_parameter(action, name="Days", label="Days", kind=Kind.INTEGER, required=False)

    missing = bound(action, laptop)
    filled = bound(action, laptop, param_Folder="Temp")

    assert missing.errors["param_Folder"] == ["This field is required."]
    assert filled.is_valid() and filled.nexthink_params() == {"Folder": "Temp", "Note": "", "Days": ""}


def test_it_ignores_forged_fields_and_sends_only_defined_parameters(action, laptop):
    make_parameter(action, name="Folder", label="Folder")

    form = bound(action, laptop, param_Folder="Temp", param_Evil="rm -rf", Evil="1", params="{}", Folder="x")

    assert form.is_valid()
    assert form.nexthink_params() == {"Folder": "Temp"}


def test_it_prefills_defaults_and_orders_parameters_as_the_curator_did(action, laptop):
    make_parameter(action, name="Second", label="Second", display_order=2, default="b")
    make_parameter(action, name="First", label="First", display_order=1, default="a")

    form = ActionRunForm(action, [laptop])

    assert list(form.fields)[:3] == ["param_First", "param_Second", "device"]
    assert (form["param_First"].value(), form["param_Second"].value()) == ("a", "b")


def test_it_rejects_a_device_uid_that_is_not_32_hex(action, laptop):
    # Upper case passes the form: ownership, which compares in lower case, decides (and logs) the rest.
    for forged in ["da2add", "../../etc/passwd", "z" * 32, ""]:
        form = bound(action, laptop, device=forged)
        assert not form.is_valid()
        assert "device" in form.errors, forged


def test_it_offers_the_users_devices_most_recent_first_and_preselects_the_first(action, alice):
    recent = make_device(alice, name="NEW-LAPTOP")
    older = make_device(alice, name="OLD-DESKTOP")

    form = ActionRunForm(action, [recent, older])

    assert [uid for uid, _ in form.fields["device"].widget.choices] == [recent.uid, older.uid]
    assert form["device"].value() == recent.uid


def test_it_hides_the_device_field_when_there_is_one_device(action, laptop):
    form = ActionRunForm(action, [laptop])

    assert form["device"].is_hidden
    assert form["device"].value() == UID


def test_it_generates_a_fresh_idempotency_key_per_form_and_keeps_a_posted_one(action, laptop):
    first, second = ActionRunForm(action, [laptop]), ActionRunForm(action, [laptop])

    assert first["idempotency_key"].value() != second["idempotency_key"].value()
    assert len(first["idempotency_key"].value()) >= 16
    posted = bound(action, laptop)
    assert posted.is_valid() and posted.cleaned_data["idempotency_key"] == KEY
    assert bound(action, laptop, idempotency_key="short").errors["idempotency_key"]


def test_it_asks_for_confirmation_when_the_action_has_a_confirmation_text(action, laptop):
    action.confirmation_text = "Teams will close."
    action.save()

    unconfirmed = bound(action, laptop)
    confirmed = bound(action, laptop, confirm="on")

    assert unconfirmed.errors["confirm"] == ["Tick the box to confirm before running this action."]
    assert confirmed.is_valid()
    assert "confirm" not in confirmed.nexthink_params()
