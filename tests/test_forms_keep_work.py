"""Forms that never lose work: a refused answer stays in its box with the error on the field, and
admin text refuses control characters as the employee's forms do."""

from django.urls import reverse

from actions.models import Run
from actions.runs.feedback import COMMENT_MAX_LENGTH
from tests.factories import make_device, make_sim_action
from tests.run_states import run_in


def test_a_refused_feedback_comment_stays_in_the_box_with_the_error_on_it(client, alice):
    run = run_in(Run.Status.SENT, user=alice, action=make_sim_action(), device=make_device(alice))
    client.force_login(alice)
    typed = "Teams still freezes " + "x" * COMMENT_MAX_LENGTH

    response = client.post(reverse("run_feedback", args=[run.pk]), {"fixed": "no", "comment": typed})

    page = response.content.decode()
    assert response.status_code == 400
    assert f"{typed}</textarea>" in page and "maxlength" not in page
    assert 'aria-invalid="true"' in page and 'id="id_comment_error"' in page
    assert f"at most {COMMENT_MAX_LENGTH} fit" in page
    assert "data-focus-first-invalid" in page and "js/form-errors.js" in page  # the focus goes to the box
    assert Run.objects.get(pk=run.pk).fixed is None


def test_admin_text_refuses_control_characters(admin_client):
    url = reverse("admin:actions_category_add")

    response = admin_client.post(url, {"name": "Net\x1bwork", "display_order": "1"})

    assert response.status_code == 200
    assert "Remove the invisible control characters" in str(response.context["adminform"].form.errors["name"])
