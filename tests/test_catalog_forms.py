"""The employee's run form built from an action's parameters: each type, each rejection, the output."""

import pytest

from actions.catalog.forms import ActionRunForm
from actions.models import ActionParameter
from tests.factories import ALICE_LAPTOP, make_action, make_device, make_parameter

Kind = ActionParameter.Kind
UID = ALICE_LAPTOP  # the `laptop` fixture's
KEY = "k" * 32


@pytest.fixture
def bare_action(db):
    """An action of no parameter: each test adds the ones it needs."""
    return make_action(name="Clean up disk", slug="clean-up-disk")


def bound(action, laptop, **values):
    data = {"device": UID, "idempotency_key": KEY} | values
    return ActionRunForm(action, [laptop], data=data)


def test_it_sends_text_as_typed_without_surrounding_spaces(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder", kind=Kind.TEXT)

    form = bound(bare_action, laptop, param_Folder="  Downloads  ")

    assert form.is_valid(), form.errors
    assert form.nexthink_params() == {"Folder": "Downloads"}


def test_it_rejects_text_longer_than_its_max_length(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder", max_length=5)

    form = bound(bare_action, laptop, param_Folder="abcdef")

    assert not form.is_valid()
    assert form.errors["param_Folder"] == ["This is 6 characters long; at most 5 fit. Shorten it."]


def test_the_browser_never_cuts_what_is_typed_or_pasted(bare_action, laptop):
    """No `maxlength` on any text box: a browser silently drops what goes beyond it (a 9-character
    field once sent INC001000 for INC0010001); the server refuses it with a message instead."""
    make_parameter(bare_action, name="Ticket", label="Ticket", max_length=9)
    make_parameter(bare_action, name="Notes", label="Notes", kind=Kind.TEXTAREA, max_length=9)

    form = bound(bare_action, laptop, param_Ticket="INC0010001", param_Notes="x")

    assert "maxlength" not in str(form["param_Ticket"]) + str(form["param_Notes"])
    assert form.errors["param_Ticket"] == ["This is 10 characters long; at most 9 fit. Shorten it."]
    assert 'value="INC0010001"' in str(form["param_Ticket"])  # kept in the box, to be shortened


def test_it_bounds_text_without_a_max_length(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder")

    form = bound(bare_action, laptop, param_Folder="x" * 1001)

    assert not form.is_valid()
    assert "at most 1000 fit" in form.errors["param_Folder"][0]


def test_it_rejects_a_line_break_in_single_line_text(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder")

    form = bound(bare_action, laptop, param_Folder="a\nb")

    assert form.errors["param_Folder"] == ["Enter a single line."]


def test_it_rejects_text_that_does_not_match_the_whole_regex_with_its_message(bare_action, laptop):
    make_parameter(bare_action, name="Ticket", label="Ticket", regex=r"INC[0-9]{4}", regex_message="Like INC1234.")

    assert bound(bare_action, laptop, param_Ticket="INC1234").is_valid()
    assert bound(bare_action, laptop, param_Ticket="INC12345").errors["param_Ticket"] == ["Like INC1234."]
    assert bound(bare_action, laptop, param_Ticket="xINC1234").errors["param_Ticket"] == ["Like INC1234."]


def test_it_keeps_line_breaks_in_multi_line_text_as_lf(bare_action, laptop):
    make_parameter(bare_action, name="Notes", label="Notes", kind=Kind.TEXTAREA, max_length=9)

    form = bound(bare_action, laptop, param_Notes="one\r\ntwo\r\n3")

    assert form.is_valid(), form.errors
    assert form.nexthink_params() == {"Notes": "one\ntwo\n3"}


def test_it_accepts_a_choice_from_the_list_only(bare_action, laptop):
    make_parameter(bare_action, name="Mode", label="Mode", kind=Kind.CHOICE, choices="quick|Quick scan\nfull|Full scan")

    ok = bound(bare_action, laptop, param_Mode="full")
    forged = bound(bare_action, laptop, param_Mode="everything")

    assert ok.is_valid() and ok.nexthink_params() == {"Mode": "full"}
    assert forged.errors["param_Mode"] == ["Choose one of the options in the list."]


def test_it_shows_choice_labels_and_asks_to_choose_when_there_is_no_default(bare_action, laptop):
    make_parameter(
        bare_action, name="Mode", label="Mode", kind=Kind.CHOICE, choices="quick|Quick scan\nfull", required=True
    )

    form = ActionRunForm(bare_action, [laptop])

    assert form.fields["param_Mode"].choices == [("", "Choose…"), ("quick", "Quick scan"), ("full", "full")]
    assert bound(bare_action, laptop, param_Mode="").errors["param_Mode"] == ["This field is required."]


def test_it_sends_yes_no_as_true_or_false(bare_action, laptop):
    make_parameter(bare_action, name="Restart", label="Restart afterwards", kind=Kind.BOOLEAN, default="true")

    ticked = bound(bare_action, laptop, param_Restart="on")
    unticked = bound(bare_action, laptop)

    assert ActionRunForm(bare_action, [laptop]).fields["param_Restart"].initial is True
    assert ticked.is_valid() and ticked.nexthink_params() == {"Restart": "true"}
    assert unticked.is_valid() and unticked.nexthink_params() == {"Restart": "false"}


def test_it_sends_integers_as_decimal_strings_within_their_range(bare_action, laptop):
    make_parameter(bare_action, name="Days", label="Days to keep", kind=Kind.INTEGER, min_value=1, max_value=30)

    ok = bound(bare_action, laptop, param_Days="07")

    assert ok.is_valid() and ok.nexthink_params() == {"Days": "7"}
    assert bound(bare_action, laptop, param_Days="0").errors["param_Days"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert bound(bare_action, laptop, param_Days="31").errors["param_Days"] == [
        "Ensure this value is less than or equal to 30."
    ]
    assert bound(bare_action, laptop, param_Days="seven").errors["param_Days"] == ["Enter a whole number."]


def test_it_requires_required_parameters_and_sends_optional_ones_empty(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder", required=True)
    make_parameter(bare_action, name="Note", label="Note", required=False)
    make_parameter(bare_action, name="Days", label="Days", kind=Kind.INTEGER, required=False)

    missing = bound(bare_action, laptop)
    filled = bound(bare_action, laptop, param_Folder="Temp")

    assert missing.errors["param_Folder"] == ["This field is required."]
    assert filled.is_valid() and filled.nexthink_params() == {"Folder": "Temp", "Note": "", "Days": ""}


def test_it_ignores_forged_fields_and_sends_only_defined_parameters(bare_action, laptop):
    make_parameter(bare_action, name="Folder", label="Folder")

    form = bound(bare_action, laptop, param_Folder="Temp", param_Evil="rm -rf", Evil="1", params="{}", Folder="x")

    assert form.is_valid()
    assert form.nexthink_params() == {"Folder": "Temp"}


def test_it_prefills_defaults_and_orders_parameters_as_the_curator_did(bare_action, laptop):
    make_parameter(bare_action, name="Second", label="Second", display_order=2, default="b")
    make_parameter(bare_action, name="First", label="First", display_order=1, default="a")

    form = ActionRunForm(bare_action, [laptop])

    assert list(form.fields)[:3] == ["param_First", "param_Second", "device"]
    assert (form["param_First"].value(), form["param_Second"].value()) == ("a", "b")


def test_it_rejects_a_device_uid_that_is_not_32_hex(bare_action, laptop):
    # Upper case passes the form: ownership, which compares in lower case, decides (and logs) the rest.
    for forged in ["da2add", "../../etc/passwd", "z" * 32, ""]:
        form = bound(bare_action, laptop, device=forged)
        assert not form.is_valid()
        assert "device" in form.errors, forged


def test_it_offers_the_users_devices_most_recent_first_and_preselects_the_first(bare_action, alice):
    recent = make_device(alice, name="NEW-LAPTOP")
    older = make_device(alice, name="OLD-DESKTOP")

    form = ActionRunForm(bare_action, [recent, older])

    assert [uid for uid, _ in form.fields["device"].widget.choices] == [recent.uid, older.uid]
    assert form["device"].value() == recent.uid


def test_it_hides_the_device_field_when_there_is_one_device(bare_action, laptop):
    form = ActionRunForm(bare_action, [laptop])

    assert form["device"].is_hidden
    assert form["device"].value() == UID


def test_it_generates_a_fresh_idempotency_key_per_form_and_keeps_a_posted_one(bare_action, laptop):
    first, second = ActionRunForm(bare_action, [laptop]), ActionRunForm(bare_action, [laptop])

    assert first["idempotency_key"].value() != second["idempotency_key"].value()
    assert len(first["idempotency_key"].value()) >= 16
    posted = bound(bare_action, laptop)
    assert posted.is_valid() and posted.cleaned_data["idempotency_key"] == KEY
    assert bound(bare_action, laptop, idempotency_key="short").errors["idempotency_key"]


def test_it_asks_for_confirmation_when_the_action_has_a_confirmation_text(bare_action, laptop):
    bare_action.confirmation_text = "Teams will close."
    bare_action.save()

    unconfirmed = bound(bare_action, laptop)
    confirmed = bound(bare_action, laptop, confirm="on")

    assert unconfirmed.errors["confirm"] == ["Tick the box to confirm before running this action."]
    assert confirmed.is_valid()
    assert "confirm" not in confirmed.nexthink_params()
