"""The employee's catalog and action pages; the curators' preview of an action page."""

from __future__ import annotations

import hashlib
import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods

from actions.catalog.forms import ActionRunForm, devices_fitting, new_idempotency_key
from actions.catalog.parameters import InvalidParams
from actions.catalog.search import SEARCH_MAX_LENGTH, SEARCH_MAX_WORDS, query_words
from actions.catalog.selectors import (
    CATALOG_COLUMNS,
    PAGE_SIZE,
    CatalogEntry,
    CatalogSection,
    Listing,
    Overview,
    catalog_category,
    catalog_overview_from_rows,
    catalog_overview_rows,
    catalog_search,
    catalog_sections_from_rows,
    icon_url,
    limited_actions,
    visible_action,
)
from actions.devices.ownership import device_for_user
from actions.devices.resolution import Resolution, learn_devices, resolve_devices_for
from actions.models import ActionParameter, Device, RemoteAction
from actions.platforms import labels, runs_on
from actions.runs import submit
from actions.runs.outlook import catalog_outlook, run_outlook
from actions.runs.selectors import runs_of
from actions.security import client_address, security_event


def catalog(request):
    """The catalog: its first page; a category's page (?category=); or search results (?q=).

    A category or a page that the employee cannot see (unknown, not a number, past the last page,
    or holding none of their actions) is a 404, like any other address that names nothing.
    """
    typed = request.GET.get("q", "").strip()
    # The words the search uses; never cut silently: the page says what it searched for when shortened.
    words = query_words(typed)
    shortened = words != typed.split()
    query = " ".join(words) if shortened else typed
    if "\x00" in query:
        # PostgreSQL refuses NUL in text: a clean 400, never a 500 with a traceback.
        return HttpResponseBadRequest("The search may not contain a NUL character.", content_type="text/plain")
    page = page_number(request.GET.get("page"))
    category = request.GET.get("category", "").strip()
    if query:  # the search box searches every action the employee sees, whatever the page it is on
        listing = catalog_search(request.user, query, page, learn_devices)
        if not listing.rows and page > 1:
            raise Http404("No such page of results.")
        return render_listing(request, listing, kind="search", query=query, shortened=shortened)
    if category:
        listing = catalog_category(request.user, category, page, learn_devices)
        if listing is None:
            raise Http404("No such category, or no such page of it.")
        return render_listing(request, listing, kind="category", category=category)
    if page != 1:
        raise Http404("The catalog's first page has no other pages.")
    # The catalog offers what runs on the systems of the employee's devices: found first if none is known.
    rows = catalog_overview_rows(request.user, learn_devices)
    not_now = limits_of(request.user, rows)
    overview = SimpleLazyObject(lambda: marked_overview(rows, not_now))
    context = {
        # Built only if the cards are not in the cache already (the template's {% cache %}).
        "overview": overview,
        "sections": SimpleLazyObject(lambda: overview.sections),
        "query": "",
        "count": len(rows),
        "sections_digest": rows_digest(rows, "overview", not_now),
    }
    return render(request, "actions/catalog.html", context)


def render_listing(
    request, listing: Listing, *, kind: str, query: str = "", category: str = "", shortened: bool = False
):
    rows = listing.rows
    not_now = limits_of(request.user, rows)
    paginator = Paginator(range(listing.total), PAGE_SIZE)  # only its numbers: the rows are one page already
    page = paginator.page(listing.page) if rows else None
    context = {
        "kind": kind,
        "title": listing.title,
        "query": query,
        "shortened": shortened,
        "search_max_length": SEARCH_MAX_LENGTH,
        "search_max_words": SEARCH_MAX_WORDS,
        "category": category,
        "count": listing.total,
        "page": page,
        "page_range": paginator.get_elided_page_range(listing.page, on_each_side=2, on_ends=1) if page else [],
        "sections": SimpleLazyObject(lambda: marked_sections(catalog_sections_from_rows(rows), not_now)),
        "entries": SimpleLazyObject(lambda: [marked(CatalogEntry(*row[:7]), not_now) for row in rows]),
        "sections_digest": rows_digest(rows, kind, not_now),
    }
    return render(request, "actions/catalog.html", context)


def page_number(value: str | None) -> int:
    """?page=: absent is 1; anything but a page number (1 to 99,999) is a 404."""
    if value is None:
        return 1
    if not (value.isascii() and value.isdigit() and len(value) <= 5 and int(value) >= 1):
        raise Http404("No such page.")
    return int(value)


def limits_of(user, rows: list[tuple]) -> dict[int, list[str]]:
    """Why the employee cannot run each card's action now, for those they cannot (catalog_outlook)."""
    return catalog_outlook(user=user, action_ids=[row[0] for row in rows], limited=limited_actions(rows))


def marked(entry: CatalogEntry, not_now: dict[int, list[str]]) -> CatalogEntry:
    """The card with why the employee cannot run its action now, if they cannot (catalog_outlook)."""
    reasons = not_now.get(entry.pk)
    return entry._replace(not_now=tuple(reasons)) if reasons else entry


def marked_sections(sections: list[CatalogSection], not_now: dict[int, list[str]]) -> list[CatalogSection]:
    for section in sections:
        section.actions = [marked(entry, not_now) for entry in section.actions]
    return sections


def marked_overview(rows: list[tuple], not_now: dict[int, list[str]]) -> Overview:
    overview = catalog_overview_from_rows(rows)
    marked_sections(overview.sections, not_now)
    return overview


def rows_digest(rows: list[tuple], kind: str = "", not_now: dict[int, list[str]] | None = None) -> str:
    """A digest of exactly what the action cards show, naming their rendered HTML in the cache.

    The catalog is read fresh on every view; only rendering the same cards again is skipped (most of
    the page's cost: bench/README.md, figure 1). Any change to what is shown is a new digest, so
    nothing needs invalidating and no one sees another's cards. The rows hold what the cards and
    section links show (counts included); links and icons follow from the rows' ids, slugs and
    icon names, given the script prefix and the icons' static URLs; `kind` names the page's layout.
    """
    icons = sorted({row[CATALOG_COLUMNS.index("icon")] for row in rows})
    limits = sorted((not_now or {}).items())  # what the cards say the employee cannot run now, and why
    shown = (kind, get_script_prefix(), [(icon, icon_url(icon)) for icon in icons], rows, limits)
    return hashlib.blake2b(repr(shown).encode(), digest_size=20).hexdigest()


@require_http_methods(["GET", "POST"])
def action_detail(request, slug):
    action = visible_action(request.user, slug)
    if action is None:
        raise Http404("No such action.")
    found = resolve_devices_for(request.user)
    # Only the devices the action runs on are offered; the others are named on the page.
    resolution = Resolution(devices_fitting(action, found.devices), found.unreachable_engines)
    others = [device for device in found.devices if device not in resolution.devices]
    status = 200
    if request.method == "POST":
        form = ActionRunForm(action, resolution.devices, data=request.POST)
        valid = form.is_valid()
        device = None
        if "device" in form.cleaned_data:
            # Whatever else is wrong, a device that is not the user's own is a 404 and a security event.
            device = device_for_user(
                request.user,
                form.cleaned_data["device"],
                source_address=client_address(request),
                known=found.devices,
            )
        elif request.POST.get("device"):
            # Not even the shape of a device UID (too long, other characters): nobody's form sends that.
            security_event(
                "device_uid_invalid",
                user=request.user,
                device=request.POST["device"],
                source_address=client_address(request),
            )
        if valid and device is not None:
            try:
                run = submit.run_submit(
                    user=request.user,
                    action=action,
                    device=device,
                    params=form.nexthink_params(),
                    idempotency_key=form.cleaned_data["idempotency_key"],
                    reason=form.cleaned_data.get("reason", ""),
                )
            except submit.IdempotencyConflict as exc:
                # The form's one-time key came back with other values: refuse, and hand out a fresh key
                # so that submitting the form as it now stands is a new request.
                form.data = form.data.copy()
                form.data["idempotency_key"] = new_idempotency_key()
                form.add_error(None, str(exc))
                status = 409
            except (submit.RunRefused, InvalidParams) as exc:
                # Cooldown, daily limit, Engine...: the message is for the employee, shown above the form.
                form.add_error(None, str(exc))
            else:
                if getattr(run, "enqueued", None) is False:
                    messages.info(request, gettext("Your request is saved and will be sent to Nexthink shortly."))
                return redirect(run.get_absolute_url())
    else:
        initial = rerun_initial(request.user, action, request.GET.get("again", ""))
        form = ActionRunForm(action, resolution.devices, initial=initial)
    context = page_context(action, form, resolution) | {"other_devices": others}
    context["outlook"] = run_outlook(user=request.user, action=action, devices=resolution.devices)
    return render(request, "actions/action_detail.html", context, status=status)


def rerun_initial(user, action: RemoteAction, run_id: str) -> dict:
    """ "Run again": the form pre-filled as one of the user's own earlier runs of this action was sent."""
    try:
        uuid.UUID(run_id)
    except ValueError:
        return {}
    run = runs_of(user).filter(pk=run_id, action=action).first()
    if run is None:
        return {}
    kinds = {param.name: param.kind for param in action.parameters.all()}
    initial = {"device": run.device_uid}
    for name, value in run.params.items():
        if name in kinds:
            boolean = kinds[name] == ActionParameter.Kind.BOOLEAN
            initial[ActionRunForm.PARAM_PREFIX + name] = value == "true" if boolean else value
    return initial


def action_preview(request, pk):
    """What an employee with one device sees on this action's page, enabled or not.

    Served by the catalog admin (RemoteActionAdmin.get_urls), which requires a staff sign-in.
    """
    if not request.user.has_perm("actions.view_remoteaction"):
        raise PermissionDenied
    action = get_object_or_404(RemoteAction.objects.prefetch_related("parameters"), pk=pk)
    sample = Device(uid="0" * 32, name="EMPLOYEE-LAPTOP", last_seen_at=timezone.now())
    resolution = Resolution(devices=[sample])
    form = ActionRunForm(action, resolution.devices)
    return render(request, "actions/action_detail.html", page_context(action, form, resolution, preview=True))


def page_context(action: RemoteAction, form: ActionRunForm, resolution, *, preview: bool = False) -> dict:
    return {
        "action": action,
        "form": form,
        "resolution": resolution,
        "wait": wait_text(submit.action_timeout(action)),
        "systems": labels(runs_on(action)),
        "preview": preview,
    }


def wait_text(seconds: int) -> str:
    if seconds < 120:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = round(seconds / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
