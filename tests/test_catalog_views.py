"""The catalog and action pages as an employee sees and uses them."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.devices.resolution import Resolution
from actions.models import ActionParameter, Category, Run
from actions.runs import submit
from actions.views import catalog as catalog_views
from tests.factories import ALICE_LAPTOP, FORM_KEY, make_action, make_device, make_laptop, make_parameter, post_run

Kind = ActionParameter.Kind
UID = ALICE_LAPTOP  # the `recent_laptop` fixture's


@pytest.fixture
def cleanup_action(db):
    """An action with two parameters: Days (1 to 30) and Folder (letters, 20 at most)."""
    action = make_action(name="Clean up disk", slug="clean-up-disk", description="Deletes temporary files.")
    make_parameter(action, name="Days", label="Days to keep", kind=Kind.INTEGER, min_value=1, max_value=30)
    make_parameter(action, name="Folder", label="Folder", max_length=20, regex=r"[A-Za-z]+", regex_message="Letters.")
    return action


@pytest.fixture
def recent_laptop(alice):
    """The `laptop` device, seen five minutes ago."""
    return make_laptop(alice, last_seen_at=timezone.now() - timedelta(minutes=5))


def html(response) -> str:
    return response.content.decode()


# --- Sign-in -----------------------------------------------------------------------------------
def test_it_sends_signed_out_visitors_to_the_sign_in_page(client, cleanup_action):
    for url in [reverse("catalog"), cleanup_action.get_absolute_url()]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_it_shows_the_sign_in_page_in_the_portals_look(client, db):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert '<label for="id_username">Username</label>' in html(response)
    assert "css/portal.css" in html(response)


def test_it_signs_in_and_lands_on_the_catalog(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-pass"})

    assert response.status_code == 302 and response["Location"] == reverse("catalog")


def test_it_says_why_sign_in_failed(client, alice):
    wrong = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    empty = client.post(reverse("login"), {"username": "alice", "password": ""})

    assert wrong.status_code == 200
    assert "Please enter a correct username and password" in html(wrong)
    assert '<ul class="error-list" id="id_password_error">' in html(empty)
    assert 'aria-describedby="id_password_error"' in html(empty)


# --- Catalog -----------------------------------------------------------------------------------
def test_it_lists_actions_by_category_with_links_and_icons(alice_client, cleanup_action):
    cleanup_action.category = Category.objects.create(name="Storage")
    cleanup_action.icon = "disk"
    cleanup_action.save()

    page = html(alice_client.get(reverse("catalog")))

    assert '<h2 id="category-' in page and ">Storage</h2>" in page
    assert f'<a href="{cleanup_action.get_absolute_url()}">Clean up disk</a>' in page
    assert "/static/icons/disk.svg" in page


def test_it_filters_the_catalog_by_the_search_box(alice_client, cleanup_action):
    make_action(name="Fix printer")

    page = html(alice_client.get(reverse("catalog"), {"q": "temporary"}))

    assert "Clean up disk" in page and "Fix printer" not in page
    assert 'value="temporary"' in page
    assert "1 action matches “temporary”" in page


def test_it_says_what_to_do_when_the_catalog_is_empty(alice_client):
    page = html(alice_client.get(reverse("catalog")))

    assert "No actions are available to you yet" in page
    assert "contact the IT service desk" in page


def test_it_says_what_to_do_when_nothing_matches_the_search(alice_client, cleanup_action):
    page = html(alice_client.get(reverse("catalog"), {"q": "zzz"}))

    assert "No actions match “zzz”" in page
    assert 'href="/">see all actions</a>' in page


# --- Action page: devices ----------------------------------------------------------------------
def test_it_names_the_one_device_and_when_it_was_last_seen(alice_client, cleanup_action, recent_laptop):
    page = html(alice_client.get(cleanup_action.get_absolute_url()))

    assert "Your device: <strong>LAPTOP-ALICE</strong>" in page
    assert "last seen 5\xa0minutes ago" in page
    assert f'<input type="hidden" name="device" value="{UID}"' in page


def test_it_lets_the_employee_pick_among_several_devices_most_recent_first(alice_client, cleanup_action, alice):
    now = timezone.now()
    make_device(alice, uid="a" * 32, name="OLD-DESKTOP", last_seen_at=now - timedelta(days=3))
    make_device(alice, uid="b" * 32, name="NEW-LAPTOP", last_seen_at=now - timedelta(hours=1))

    page = html(alice_client.get(cleanup_action.get_absolute_url()))

    assert "<legend>Device to fix</legend>" in page
    radios = re.findall(r'type="radio" name="device" value="(\w+)"', page)
    assert radios == ["b" * 32, "a" * 32]
    picker = page[page.index("<legend>Device to fix</legend>") :]  # (a notice above says OLD-DESKTOP is away)
    assert picker.index("NEW-LAPTOP") < picker.index("OLD-DESKTOP")


def test_it_explains_what_to_do_without_a_device_and_shows_no_form(alice_client, cleanup_action):
    response = alice_client.get(cleanup_action.get_absolute_url())

    assert "We could not find your device" in html(response)
    assert "Sign in to your work computer" in html(response)
    assert 'name="idempotency_key"' not in html(response)


def test_it_names_the_engines_that_could_not_be_asked(alice_client, cleanup_action, recent_laptop, monkeypatch):
    monkeypatch.setattr(
        catalog_views,
        "resolve_devices_for",
        lambda user: Resolution(devices=[recent_laptop], unreachable_engines=["engine-apac", "engine-us"]),
    )

    page = html(alice_client.get(cleanup_action.get_absolute_url()))

    assert "<strong>engine-apac, engine-us</strong>" in page
    assert "Your device: <strong>LAPTOP-ALICE</strong>" in page


# --- Action page: running ----------------------------------------------------------------------
def test_it_shows_what_will_happen_before_the_form(alice_client, cleanup_action, recent_laptop):
    cleanup_action.cooldown_minutes = 10
    cleanup_action.message_before = "Save your work first."
    cleanup_action.save()

    page = html(alice_client.get(cleanup_action.get_absolute_url()))

    assert "Deletes temporary files." in page
    assert "run it again on the same device after 10 minutes" in page
    assert "Save your work first." in page
    assert page.index("What will happen") < page.index("Save your work first.") < page.index('name="idempotency_key"')


def test_it_submits_a_run_with_string_values_and_redirects_to_it(alice_client, cleanup_action, recent_laptop, alice):
    response = post_run(alice_client, cleanup_action, param_Days="7", param_Folder="Temp", param_Extra="x")

    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert (run.user, run.action, run.device, run.idempotency_key) == (alice, cleanup_action, recent_laptop, FORM_KEY)
    assert run.params == {"Days": "7", "Folder": "Temp"}


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"param_Days": "31"}, "param_Days", "Ensure this value is less than or equal to 30."),
        ({"param_Days": "0"}, "param_Days", "Ensure this value is greater than or equal to 1."),
        ({"param_Folder": "x" * 21}, "param_Folder", "This is 21 characters long; at most 20 fit. Shorten it."),
        ({"param_Folder": "Temp1"}, "param_Folder", "Letters."),
    ],
)
def test_it_rejects_bad_values_next_to_the_field_and_stores_nothing(
    alice_client, cleanup_action, recent_laptop, values, field, message
):
    response = post_run(alice_client, cleanup_action, **values)

    assert response.status_code == 200
    page = html(response)
    error = re.search(rf'<ul class="error-list" id="id_{field}_error"><li>.*?</li></ul>', page).group(0)
    assert message in error
    widget = re.search(rf'<input [^>]*name="{field}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in widget and f"id_{field}_error" in widget
    assert Run.objects.count() == 0


def test_it_rejects_a_choice_not_in_the_list(alice_client, recent_laptop, db):
    action = make_action(slug="scan")
    make_parameter(action, name="Mode", label="Mode", kind=Kind.CHOICE, choices="quick\nfull", required=True)

    response = post_run(alice_client, action, param_Mode="deep")

    assert "Choose one of the options in the list." in html(response)
    assert Run.objects.count() == 0


def test_it_requires_the_confirmation_when_the_action_has_one(alice_client, recent_laptop, db):
    action = make_action(slug="restart-teams", confirmation_text="Teams will close for a minute.")

    page = html(alice_client.get(action.get_absolute_url()))
    refused = post_run(alice_client, action)
    accepted = post_run(alice_client, action, confirm="on")

    assert "Teams will close for a minute." in page and 'name="confirm"' in page
    assert "Tick the box to confirm before running this action." in html(refused)
    assert accepted.status_code == 302 and Run.objects.count() == 1


def test_it_answers_404_and_stores_nothing_for_a_device_of_someone_else(
    alice_client, cleanup_action, recent_laptop, bob, caplog
):
    make_device(bob, uid="c" * 32, name="LAPTOP-BOB")

    response = post_run(alice_client, cleanup_action, device="c" * 32, param_Days="7", param_Folder="Temp")

    assert response.status_code == 404
    assert Run.objects.count() == 0
    assert "device_not_owned user=alice device=" + "c" * 32 in caplog.text


def test_it_rejects_a_malformed_device_uid_before_any_lookup(alice_client, cleanup_action, recent_laptop, monkeypatch):
    looked_up = []
    monkeypatch.setattr(catalog_views, "device_for_user", lambda *a, **kw: looked_up.append(a))

    response = post_run(alice_client, cleanup_action, device="z" * 32, param_Days="7", param_Folder="Temp")

    assert response.status_code == 200
    assert "Choose one of your devices." in html(response)
    assert looked_up == [] and Run.objects.count() == 0


def test_it_shows_why_the_service_refused_the_run(alice_client, cleanup_action, recent_laptop, monkeypatch):
    def refuse(**kwargs):
        raise submit.RunRefused("You can run it again at 10:42.")

    monkeypatch.setattr(submit, "run_submit", refuse)

    response = post_run(alice_client, cleanup_action, param_Days="7", param_Folder="Temp")

    assert response.status_code == 200
    assert "You can run it again at 10:42." in html(response)


def test_it_keeps_the_idempotency_key_when_the_form_comes_back_with_errors(alice_client, cleanup_action, recent_laptop):
    response = post_run(alice_client, cleanup_action, param_Days="99")

    assert f'name="idempotency_key" value="{FORM_KEY}"' in html(response)


def test_it_labels_every_visible_input(alice_client, recent_laptop, db):
    action = make_action(slug="all-kinds", confirmation_text="Sure?")
    for kind in Kind.values:
        make_parameter(
            action, name=f"P_{kind}", label=f"Label {kind}", kind=kind, choices="a\nb" if kind == "choice" else ""
        )

    page = html(alice_client.get(action.get_absolute_url()))

    ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="hidden")[^>]*id="([^"]+)"', page)
    assert len(ids) == len(Kind.values) + 1  # one per parameter, and the confirmation
    for input_id in ids:
        assert f'<label for="{input_id}">' in page, input_id


def test_it_escapes_what_curators_typed(alice_client, recent_laptop, db):
    action = make_action(slug="x", description="<b>bold</b>", confirmation_text="<script>alert(1)</script>")
    make_parameter(action, name="Folder", label="<i>Folder</i>", help_text="<img src=x>")

    page = html(alice_client.get(action.get_absolute_url()))

    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page and "<img src=x>" not in page and "<i>Folder</i>" not in page


def test_a_form_key_reused_with_other_values_is_a_409_with_a_fresh_key(alice_client, cleanup_action, recent_laptop):
    post_run(alice_client, cleanup_action, param_Days="7", param_Folder="Temp")

    response = post_run(alice_client, cleanup_action, param_Days="8", param_Folder="Temp")

    assert response.status_code == 409
    assert "already sent once with other details" in html(response)
    assert response.context["form"]["idempotency_key"].value() != FORM_KEY
    assert Run.objects.count() == 1


def test_the_error_summary_takes_the_focus(alice_client, cleanup_action, recent_laptop):
    response = post_run(alice_client, cleanup_action, param_Days="99")

    assert 'id="error-summary"' in html(response) and 'tabindex="-1"' in html(response)
    assert "js/form-errors.js" in html(response)


# --- The action as the page reads it: cached per catalog version ------------------------------------
def test_the_action_page_reads_the_action_once_per_catalog_version(alice_client, cleanup_action, recent_laptop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("action_detail", args=[cleanup_action.slug])
    alice_client.get(url)

    with CaptureQueriesContext(connection) as queries:
        assert alice_client.get(url).status_code == 200

    # One query for the action (its visibility and the catalog's version); its parameters and
    # Engines come from the cache.
    action_reads = [q["sql"] for q in queries if '"actions_remoteaction' in q["sql"] or "actions_action" in q["sql"]]
    assert len(action_reads) == 1 and '"actions_catalogversion"' in action_reads[0]


def days_field(client, action) -> str:
    page = client.get(reverse("action_detail", args=[action.slug])).content.decode()
    return re.search(r'<input[^>]*name="param_Days"[^>]*>', page).group(0)


def test_a_changed_parameter_shows_at_the_next_view(alice_client, cleanup_action, recent_laptop):
    assert 'max="30"' in days_field(alice_client, cleanup_action)  # cached now
    days = cleanup_action.parameters.get(name="Days")

    days.max_value = 60
    days.save()

    assert 'max="60"' in days_field(alice_client, cleanup_action)


def test_a_new_parameter_shows_at_the_next_view(alice_client, cleanup_action, recent_laptop):
    page = alice_client.get(reverse("action_detail", args=[cleanup_action.slug])).content.decode()
    assert "Reason" not in page

    make_parameter(cleanup_action, name="Reason", label="Reason")

    assert "Reason" in alice_client.get(reverse("action_detail", args=[cleanup_action.slug])).content.decode()


def test_an_engine_taken_from_the_action_counts_at_the_next_submit(alice_client, cleanup_action, alice):
    from actions.models import Engine

    emea = Engine.objects.create(database_uid="e" * 32, name="EMEA", address="emea.example")
    apac = Engine.objects.create(database_uid="a" * 32, name="APAC", address="apac.example")
    make_device(alice, uid=UID, name="LAPTOP-ALICE", engine=apac)
    cleanup_action.engines.add(emea, apac)
    alice_client.get(reverse("action_detail", args=[cleanup_action.slug]))  # cached with both Engines

    cleanup_action.engines.remove(apac)
    response = post_run(alice_client, cleanup_action, Days="3", Folder="Temp")

    assert response.status_code == 200 and not Run.objects.exists()
    assert "IT has not enabled it for the Nexthink server your device reports to" in response.content.decode()


def catalog_version():
    from actions.models import CatalogVersion

    return CatalogVersion.objects.filter(pk=1).values_list("number", flat=True).first()


def test_an_engine_sync_keeps_every_catalog_cache(use_simulator, db):
    from actions.devices.engines import engines_sync

    engines_sync()  # creates the Engines
    before = catalog_version()

    result = engines_sync()  # what runs every hour: every Engine saved (status, sync time)

    assert result.unchanged and catalog_version() == before


def test_an_engine_s_new_uid_counts_at_the_next_submit(alice_client, cleanup_action, alice):
    from actions.models import Engine

    engine = Engine.objects.create(database_uid="e" * 32, name="EMEA", address="emea.example")
    make_device(alice, uid=UID, name="LAPTOP-ALICE", engine=engine)
    cleanup_action.engines.add(engine)
    alice_client.get(reverse("action_detail", args=[cleanup_action.slug]))  # cached with the Engine's old UID

    engine.database_uid = "f" * 32
    engine.save()
    response = post_run(alice_client, cleanup_action, Days="3", Folder="Temp")

    assert response.status_code == 302
    assert Run.objects.get().engine_uids == ["f" * 32]
