"""Nexthink's words for a device's system, as the portal's (actions/platforms.py).

Infinity's NQL answers `device.operating_system.platform` ("Windows", "macOS", "Linux"); a classic
Engine's NXQL is asked per platform (`platform=windows`, `mac_os`, `mobile`). Only Windows and macOS
run remote actions; anything else is "unknown", which the portal does not filter on.
"""

from __future__ import annotations

import re

from actions.platforms import MACOS, UNKNOWN, WINDOWS

_WORDS = {
    "windows": WINDOWS,
    "macos": MACOS,
    "mac_os": MACOS,
    "mac": MACOS,
    "osx": MACOS,
    "mac_os_x": MACOS,
    "os_x": MACOS,
}


def device_platform(raw: object) -> str:
    """WINDOWS, MACOS or UNKNOWN, from what NQL or NXQL says (case, spaces and dashes aside)."""
    if not isinstance(raw, str):
        return UNKNOWN
    word = re.sub(r"[\s-]+", "_", raw.strip().lower())
    return _WORDS.get(word, UNKNOWN)
