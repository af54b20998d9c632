"""The shapes of Nexthink identifiers: one pattern each, used by the client, the forms and the models."""

import re

# A remote action UID (classic): a GUID with dashes.
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A classic device UID, and an Engine's database UID: 32 hexadecimal characters.
CLASSIC_DEVICE_UID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
ENGINE_UID_RE = CLASSIC_DEVICE_UID_RE
# An Infinity device is named by its Collector UID: a UUID in every one of Nexthink's examples (the
# Collector makes one at install). One rule for the client, device resolution and the model.
COLLECTOR_UID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A device UID the portal stores and accepts from a form: either of the two.
DEVICE_UID_RE = re.compile(rf"{CLASSIC_DEVICE_UID_RE.pattern}|{COLLECTOR_UID_RE.pattern}")
# Nexthink Infinity: a remote action's NQL id. The Remote Actions API documents only "a string, at
# least 1 character", with the example "#ExampleRA"; public clients accept dashes (#repair-vpn_v2):
# a `#`, then 1 to 255 letters, digits, underscores or dashes.
NQL_ACTION_ID_RE = re.compile(r"^#[A-Za-z0-9_-]{1,255}$")
# A saved NQL API query's id: the NQL API's own pattern.
NQL_QUERY_ID_RE = re.compile(r"^#[a-z0-9_]{2,255}$")

# --- The run's short reference: what an employee reads to IT over the phone ---------------------------
# "FMD-" and the first 8 hexadecimal digits of the run's UUID, upper case: FMD-8D41162B. Eight digits
# tell apart a company's runs in practice; the admin's search lists every run that starts with them.
REFERENCE_PREFIX = "FMD-"
REFERENCE_RE = re.compile(r"^\s*FMD-?([0-9a-fA-F]{4,8})\s*$", re.IGNORECASE)


def run_reference(run_id) -> str:
    """The short reference of a run, from its UUID: "FMD-8D41162B"."""
    return REFERENCE_PREFIX + str(run_id).replace("-", "")[:8].upper()


def reference_bounds(text: str) -> tuple[str, str] | None:
    """The lowest and highest run UUID a typed reference (or its start) can name; None if it is not one.

    A range on the primary key, not a text match: it uses the key's index on SQLite and PostgreSQL.
    """
    match = REFERENCE_RE.match(text)
    if not match:
        return None
    start = match.group(1).lower()

    def dashed(hex32: str) -> str:
        return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"

    return dashed(start.ljust(32, "0")), dashed(start.ljust(32, "f"))
