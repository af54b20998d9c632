"""The shapes of Nexthink identifiers: one pattern each, used by the client, the forms and the models."""

import re

# A remote action UID (classic): a GUID with dashes.
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A classic device UID, and an Engine's database UID: 32 hexadecimal characters.
DEVICE_UID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
ENGINE_UID_RE = DEVICE_UID_RE
