"""`manage.py import_devices FILE.csv`: good lines imported, bad lines reported, a re-run changes nothing."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from actions.models import Device, Engine
from tests.factories import EMEA

UID1 = "da2add909a144e8235453f88dc45172f"
UID2 = "4423e4c059b2c72ee9382e135888bef7"


@pytest.fixture
def emea(db):
    return Engine.objects.create(database_uid=EMEA, name="engine-emea")


def import_devices(path, *args):
    """`manage.py import_devices path args` in this process: its stdout, its stderr and the CommandError, if any."""
    out, err = StringIO(), StringIO()
    try:
        call_command("import_devices", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def device_rows():
    """Every Device row as a dict, in uid order."""
    return list(Device.objects.order_by("uid").values())


def test_it_imports_the_good_lines_and_reports_each_bad_one(tmp_path, alice, bob, emea):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "uid,name,owner,engine\n"
        f"{UID1},LAPTOP-ALICE,alice,{EMEA}\n"
        f"{UID2.upper()},LAPTOP-BOB,bob\n"
        "not-a-uid,BROKEN,alice\n"
        f"{'1' * 32},NOBODY,mallory\n"
        f"{'2' * 32},NO-ENGINE,alice,{'f' * 32}\n"
        f"{'3' * 32},TOO,MANY,COLUMNS,HERE\n"
        f"{UID1},LAPTOP-ALICE-AGAIN,alice\n"
        f"{'4' * 32},,alice\n"
        "\n",
        encoding="utf-8",
    )

    out, err, error = import_devices(csv_file)

    assert error is not None and "6 line(s) were not imported" in str(error)
    assert err.splitlines() == [
        "line 4: the device UID must be 32 hexadecimal characters, got 'not-a-uid'",
        "line 5: no user named 'mallory'",
        f"line 6: no Engine with database UID '{'f' * 32}' (run sync_engines?)",
        "line 7: expected 3 or 4 columns (uid, name, owner, engine), got 5",
        f"line 8: device {UID1} is already on line 2",
        "line 9: the name must be 1 to 255 characters",
    ]
    assert "2 created, 0 updated, 0 unchanged" in out
    alices = Device.objects.get(uid=UID1)
    assert (alices.name, alices.owner, alices.engine, alices.source) == ("LAPTOP-ALICE", alice, emea, "import")
    assert alices.confirmed_at is not None
    bobs = Device.objects.get(uid=UID2)  # stored in lowercase
    assert (bobs.owner, bobs.engine) == (bob, None)
    assert Device.objects.count() == 2


def test_a_second_run_of_the_same_file_changes_nothing(tmp_path, alice, bob, emea):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"{UID1},LAPTOP-ALICE,alice,{EMEA}\n{UID2},LAPTOP-BOB,bob\n", encoding="utf-8")
    import_devices(csv_file)
    before = device_rows()

    out, err, error = import_devices(csv_file)

    assert error is None and err == ""
    assert "0 created, 0 updated, 2 unchanged" in out
    assert device_rows() == before


def test_it_updates_a_changed_line_and_moves_a_device_to_its_new_owner(tmp_path, alice, bob):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"{UID1},LAPTOP-ALICE,alice\n", encoding="utf-8")
    import_devices(csv_file)
    Device.objects.filter(uid=UID1).update(source=Device.Source.NXQL)
    csv_file.write_text(f"{UID1},LAPTOP-NOW-BOBS,bob\n", encoding="utf-8")

    out, _, error = import_devices(csv_file)

    assert error is None and "0 created, 1 updated, 0 unchanged" in out
    device = Device.objects.get(uid=UID1)
    assert (device.name, device.owner, device.source) == ("LAPTOP-NOW-BOBS", bob, "import")


def test_a_dry_run_changes_nothing(tmp_path, alice):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"{UID1},LAPTOP-ALICE,alice\nbad,line,alice\n", encoding="utf-8")

    out, err, error = import_devices(csv_file, "--dry-run")

    assert "would import 1 line(s); 1 line(s) with errors" in out
    assert err.startswith("line 2:")
    assert error is not None
    assert Device.objects.count() == 0


def test_it_reads_a_spreadsheets_utf8_with_bom_and_quoted_names(tmp_path, alice):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_bytes((f'\ufeffUID,Name,Owner\n{UID1},"Zoë\'s laptop, 14""",alice\n').encode())

    _, err, error = import_devices(csv_file)

    assert error is None and err == ""
    assert Device.objects.get(uid=UID1).name == "Zoë's laptop, 14\""


def test_a_missing_file_is_an_error(tmp_path, db):
    _, _, error = import_devices(tmp_path / "nope.csv")

    assert error is not None and "Cannot read" in str(error)


def test_it_accepts_an_empty_last_column_as_spreadsheets_write_it(tmp_path, alice, bob, emea):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f"uid,name,owner,engine,\n{UID1},LAPTOP-ALICE,alice,{EMEA},\n{UID2},LAPTOP-BOB,bob,\n")

    out, err, error = import_devices(csv_file)

    assert error is None and err == ""
    assert "2 created" in out
    assert Device.objects.get(uid=UID1).engine == emea
    assert Device.objects.get(uid=UID2).engine is None


def test_it_reports_the_physical_line_of_the_file_even_after_a_name_spanning_two_lines(tmp_path, alice):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(
        "uid,name,owner\n"  # line 1
        f'{UID1},"LAPTOP\nALICE",alice\n'  # lines 2 and 3: one CSV row
        "not-a-uid,BROKEN,alice\n"  # line 4
        f"{UID2},LAPTOP-2,alice\n"  # line 5
        f"{UID2},LAPTOP-2-AGAIN,alice\n"  # line 6
    )

    _, err, error = import_devices(csv_file)

    assert error is not None
    assert err.splitlines() == [
        "line 2: the name contains a control character or line break (U+000A)",
        "line 4: the device UID must be 32 hexadecimal characters, got 'not-a-uid'",
        f"line 6: device {UID2} is already on line 5",
    ]
    assert list(Device.objects.values_list("uid", flat=True)) == [UID2]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\r"])
def test_it_refuses_a_device_name_with_a_control_character(tmp_path, alice, char):
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text(f'{UID1},"LAPTOP{char}ALICE",alice\n', encoding="utf-8", newline="")

    _, err, error = import_devices(csv_file)

    assert error is not None
    assert err.strip() == f"line 1: the name contains a control character or line break (U+{ord(char):04X})"
    assert Device.objects.count() == 0
