"""A device's operating system, and which of them an action runs on: the few rules, as plain logic.

Nexthink says for which systems an action's script exists (Infinity: `hasScriptWindows`,
`hasScriptMacOs`; classic: the curator sets it) and which inputs each system's script uses
(`usedByWindows`, `usedByMacOs`). A device whose system the portal does not know ("unknown") is
offered everything: the portal does not hide what it cannot tell apart.

Lowest layer: the models take the choices from here, the Nexthink clients map Nexthink's words to
them, the domain asks `fits` and `uses`. Objects are read by attribute (duck typing), never imported.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext, gettext_lazy

WINDOWS, MACOS, UNKNOWN = "windows", "macos", "unknown"
# The systems' own names stay as they are; "Unknown" is in the reader's language (the admin's column).
CHOICES = [(WINDOWS, "Windows"), (MACOS, "macOS"), (UNKNOWN, gettext_lazy("Unknown"))]
KNOWN = (WINDOWS, MACOS)
LABELS = dict(CHOICES)


def runs_on(action) -> frozenset[str]:
    """The systems the action's script exists for (an object with runs_on_windows, runs_on_macos)."""
    return frozenset(p for p, on in ((WINDOWS, action.runs_on_windows), (MACOS, action.runs_on_macos)) if on)


def used_by(parameter) -> frozenset[str]:
    """The systems whose script reads this input (an object with used_by_windows, used_by_macos)."""
    return frozenset(p for p, on in ((WINDOWS, parameter.used_by_windows), (MACOS, parameter.used_by_macos)) if on)


def fits(action, platform: str) -> bool:
    """May the action run on a device of this system? A system not known: yes."""
    return platform not in KNOWN or platform in runs_on(action)


def uses(parameter, platform: str) -> bool:
    """Does a device of this system use this input? A system not known: yes (every input is asked)."""
    return platform not in KNOWN or platform in used_by(parameter)


def offered(device_platforms: Iterable[str]) -> frozenset[str] | None:
    """The systems the catalog offers actions for, from those of the employee's devices.

    None: no filter (no device known yet, or one whose system is not known): every action is offered.
    """
    platforms = frozenset(device_platforms)
    if not platforms or not platforms <= frozenset(KNOWN):
        return None
    return platforms


def label(platform: str) -> str:
    return str(LABELS.get(platform, LABELS[UNKNOWN]))


def labels(platforms: Iterable[str]) -> str:
    """ "Windows", "Windows and macOS", "no system" in words an employee reads."""
    names = [str(LABELS[p]) for p in KNOWN if p in set(platforms)]
    if not names:
        return gettext("no system")
    if len(names) == 1:
        return names[0]
    return gettext("%(first)s and %(last)s") % {"first": ", ".join(names[:-1]), "last": names[-1]}
