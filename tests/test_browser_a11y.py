"""In Chromium: axe-core (WCAG 2.1 A/AA) finds nothing on the run page in each status (Technical
details open too), My runs, a refused and an accepted answer, the action page with its notices and a
refused form, the catalog, a search, Preferences, and the admin pages the portal adds or changes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from playwright.sync_api import expect

from actions.models import Category, Device, RemoteAction, Run
from tests.browser_support import sign_in
from tests.factories import make_device, make_parameter, make_sim_action
from tests.run_states import run_in
from tests.test_browser import PHONE, assert_accessible, assert_fits_phone_width

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_admin_lists_and_a_run_have_no_accessibility_violation(browser, server, admin_user, alice):
    network = Category.objects.create(name="Network", display_order=1)
    action = make_sim_action(category=network)
    run = run_in(Run.Status.FAILED, user=alice, action=action, device=make_device(alice))
    page = sign_in(browser, server.url, "admin", "admin-pass")

    for url in (
        reverse("admin:actions_category_changelist"),  # the order boxes of list_editable
        reverse("admin:actions_run_changelist"),  # the filters and the search box
        reverse("admin:actions_run_change", args=[run.pk]),
        reverse("admin:actions_remoteaction_changelist"),
        reverse("admin:actions_device_changelist"),
        reverse("admin:actions_ticket_changelist"),
        reverse("admin:actions_engine_changelist"),
        reverse("admin:actions_runinsight_changelist"),
        reverse("admin:actions_remoteaction_change", args=[action.pk]),
        reverse("admin:actions_remoteaction_import_catalog"),  # the upload, then its dry run
        reverse("admin:auditlog_logentry_changelist"),  # the audit trail and its filters
        reverse("admin:actions_apiclient_changelist"),
        reverse("admin:actions_apiclient_add"),  # scopes and the two-list selectors
        reverse("admin:actions_apicall_changelist"),
    ):
        page.goto(url)
        assert_accessible(page)


@pytest.mark.parametrize("oidc", [False, True], ids=["password", "company account"])
def test_the_sign_in_page_and_its_language_switch_have_no_accessibility_violation(browser, server, settings, oidc):
    settings.LOCAL_LOGIN, settings.OIDC_ENABLED = True, oidc
    page = browser.new_context(base_url=server.url).new_page()
    page.goto(reverse("login") + "?next=/runs/")
    assert_accessible(page)

    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change language").click()  # a plain form post: nothing the CSP refuses

    expect(page).to_have_url(server.url + reverse("login") + "?next=/runs/")
    with translation.override("fr"):
        heading, language = translation.gettext("Sign in"), translation.gettext("Language")
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_label(language)).to_have_value("fr")
    assert_accessible(page)


def test_every_employee_page_state_has_no_accessibility_violation(browser, server, alice, screenshot):
    action, device = make_sim_action(), make_device(alice, name="LAPTOP-ALICE")
    runs = {status: run_in(status, user=alice, action=action, device=device) for status in Run.Status.values}
    page = sign_in(browser, server.url, "alice", "alice-pass")
    phone = page.context.new_page()
    phone.set_viewport_size(PHONE)

    for status, run in runs.items():
        page.goto(run.get_absolute_url())
        page.get_by_text("Technical details").click()  # opened: its table and codes are checked too
        assert_accessible(page)
        screenshot(page, f"run-{status}")
        phone.goto(run.get_absolute_url())
        assert_fits_phone_width(phone)
        screenshot(phone, f"run-{status}-phone")
    page.goto(reverse("my_runs"))
    assert_accessible(page)
    screenshot(page, "my-runs")
    phone.goto(reverse("my_runs"))
    screenshot(phone, "my-runs-phone")

    # A refused answer: the page again, the comment kept in its box, the focus on it.
    page.goto(runs[Run.Status.SENT].get_absolute_url())
    page.get_by_label("Anything to add?").fill("Still slow\x07")
    page.get_by_role("button", name="No, it is not").click()
    expect(page.get_by_label("Anything to add?")).to_be_focused()
    expect(page.get_by_label("Anything to add?")).to_have_value("Still slow\ufffd")
    assert_accessible(page)
    page.get_by_label("Anything to add?").fill("Fine now")
    page.get_by_role("button", name="Yes, it is fixed").click()
    expect(page.get_by_role("status").filter(has_text="glad it is fixed")).to_be_visible()
    assert_accessible(page)  # with a flash message: its list keeps its items

    # The action page says before the form that the action waits for its cooldown and that the
    # device has been away; then a refused form.
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(days=3))
    RemoteAction.objects.filter(pk=action.pk).update(cooldown_minutes=60)
    make_parameter(action, name="Mode", label="Mode", required=True)
    page.goto(action.get_absolute_url())
    expect(page.locator("[data-outlook]")).to_have_count(2)
    assert_accessible(page)
    page.get_by_role("button", name=f"Run “{action.name}”").click()
    expect(page.locator("#error-summary")).to_be_focused()
    assert_accessible(page)
    page.goto(reverse("catalog"))
    expect(page.locator("[data-not-now]").first).to_be_visible()  # its card says when it may run again
    assert_accessible(page)
    for url in (reverse("catalog") + "?q=nothing-matches-this", reverse("preferences")):
        page.goto(url)
        assert_accessible(page)
