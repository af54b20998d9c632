"""The signed-in user, read on every request with a query compiled once per process.

Django's backends read the user of a session with ``User.objects.get(pk=...)``, built and compiled
by the ORM on every request. The same ORM query compiled once (actions/compiled.py) gives the same
instance; each backend still decides whether that user may be signed in.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from actions.compiled import compiled_instances, concrete_columns


def _user_by_pk(pk: int):
    model = get_user_model()
    return model._default_manager.filter(pk=pk).values_list(*concrete_columns(model))


def user_by_pk(user_id):
    """The user with this id (as the session holds it: text), or None."""
    model = get_user_model()
    try:
        pk = model._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    if not isinstance(pk, int):
        return model._default_manager.filter(pk=pk).first()  # a custom key: the ORM's own read
    found = compiled_instances(model, _user_by_pk, pk)
    return found[0] if found else None
