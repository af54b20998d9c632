"""End to end in a real headless Chromium, signed in through a real OpenID Connect provider process.

The provider is oidc-provider-mock on a loopback port (tests/oidc.py). Dana has no portal password:
her first sign-in links the account IT created for her device, with the directory's groups; a
changed group set at the next sign-in changes the catalog; and she runs an action on the device
assigned to her SSO user name, which a real Celery worker sends to the Act API simulator.
"""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from playwright.sync_api import expect

from actions.models import Run
from tests import oidc
from tests.browser_support import LIVE_UPDATE_TIMEOUT_MS
from tests.factories import EMEA, SIM_ACTION, make_action, make_device, make_sim_action
from tests.worker import FILESYSTEM_BROKER, Worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Fixtures: the provider process and the settings pointing at it (Chromium, the live server and
# screenshots come from tests/browser_support.py).
oidc_provider_process, oidc_provider = oidc.oidc_provider_process, oidc.oidc_provider
DANA_DEVICE = "5f1c0e2a9b7d4c3e8a6f1b2c3d4e5f60"


def sign_in_with_company_account(page, base: str, sub: str) -> None:
    page.goto(base + reverse("login"))
    page.get_by_role("link", name="Sign in with your company account").click()
    # The provider's own page: choose the identity, as an employee would type their account.
    page.get_by_label("Subject").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()
    expect(page).to_have_url(base + reverse("catalog"))


def test_an_employee_signs_in_with_the_company_account_and_runs_an_action_on_their_device(
    browser, server, oidc_provider, settings, use_simulator, sim_requests, broker_queue, screenshot, tmp_path
):
    settings.DEVICE_RESOLVERS = ["directory"]
    settings.OIDC_GROUP_MAP = {"Finance": "Finance", "Field staff": "Field staff"}
    settings.LOCAL_LOGIN = False
    # As the settings do for OIDC_ISSUER: sign-out's form may end on the provider's end_session page.
    settings.SECURE_CSP = settings.SECURE_CSP | {
        "form-action": [*settings.SECURE_CSP["form-action"], oidc_provider.url]
    }
    finance, field = Group.objects.create(name="Finance"), Group.objects.create(name="Field staff")
    make_action(name="Reset the ledger add-in", slug="ledger").groups.add(finance)
    make_action(name="Recalibrate the scanner", slug="scanner").groups.add(field)
    action = make_sim_action(slug="clear-teams-cache")
    action.engines.create(database_uid=EMEA, name="engine-emea")
    dana = User.objects.create_user("dana")  # created by IT to assign her laptop; no password
    make_device(dana, uid=DANA_DEVICE, name="LAPTOP-DANA")
    oidc_provider.set_user(
        "sub-dana",
        {"preferred_username": "dana", "email": "dana@corp.example", "name": "Dana K", "groups": ["Finance"]},
    )
    base = server.url
    page = browser.new_context().new_page()

    # First sign-in: the login page offers only the company account; the directory's groups arrive.
    page.goto(base + reverse("login"))
    expect(page.get_by_label("Password")).to_have_count(0)
    screenshot(page, "sign-in-company-account")
    sign_in_with_company_account(page, base, "sub-dana")
    expect(page.get_by_role("button", name="Sign out dana")).to_be_visible()
    expect(page.get_by_role("link", name="Reset the ledger add-in")).to_be_visible()
    expect(page.get_by_role("link", name="Recalibrate the scanner")).to_have_count(0)
    assert set(dana.groups.values_list("name", flat=True)) == {"Finance"}
    assert User.objects.count() == 1

    # Sign-out ends the portal session, then the provider's (RP-initiated logout) and comes back.
    page.get_by_role("button", name="Sign out dana").click()
    expect(page).to_have_url(re.compile(re.escape(oidc_provider.url + "/oauth2/end_session") + r"\?.*id_token_hint="))
    page.get_by_role("button", name="End session").click()
    expect(page).to_have_url(base + reverse("login"))

    # The directory moves Dana to Field staff: the next sign-in changes what the catalog shows.
    oidc_provider.set_user(
        "sub-dana",
        {"preferred_username": "dana", "email": "dana@corp.example", "name": "Dana K", "groups": ["Field staff"]},
    )
    sign_in_with_company_account(page, base, "sub-dana")
    expect(page.get_by_role("link", name="Recalibrate the scanner")).to_be_visible()
    expect(page.get_by_role("link", name="Reset the ledger add-in")).to_have_count(0)
    screenshot(page, "catalog-after-group-change")

    # She runs an action: the device is the one assigned to her SSO user name.
    page.get_by_role("link", name="Clear Teams cache").click()
    expect(page.get_by_text("Your device: LAPTOP-DANA")).to_be_visible()
    page.get_by_role("button", name="Run “Clear Teams cache”").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}/(#main)?$"))
    run = Run.objects.get()
    assert (run.user_id, run.status) == (dana.pk, Run.Status.QUEUED)
    assert broker_queue() == [str(run.pk)]

    worker = Worker(use_simulator.url, tmp_path / "worker.log", broker_url=FILESYSTEM_BROKER)
    try:
        expect(page.locator("#run-status [data-field=status_label]")).to_have_text(
            "Accepted by Nexthink", timeout=LIVE_UPDATE_TIMEOUT_MS
        )
    finally:
        worker.stop()
        print(worker.log_path.read_text())
    screenshot(page, "run-after-sso")
    [sent] = sim_requests()
    assert sent["body"]["remoteActionUid"] == SIM_ACTION and sent["body"]["deviceUids"] == [DANA_DEVICE]
