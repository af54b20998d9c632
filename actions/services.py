"""Writes and business rules: submitting, dispatching and reaping runs."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from actions.models import Device, RemoteAction, Run

log = logging.getLogger(__name__)


def action_timeout(action: RemoteAction) -> int:
    return action.timeout_seconds or settings.NEXTHINK_DEFAULT_TIMEOUT_SECONDS


@transaction.atomic
def run_submit(
    *,
    user,
    action: RemoteAction,
    device: Device,
    params: dict[str, str],
    idempotency_key: str = "",
    requested_by=None,
) -> Run:
    """Store a queued run with a snapshot of what will be sent. (Enqueueing comes with dispatch.)"""
    run = Run.objects.create(
        user=user,
        requested_by=requested_by,
        action=action,
        device=device,
        idempotency_key=idempotency_key,
        action_name=action.name,
        action_uid=action.nexthink_uid,
        device_uid=device.uid,
        device_name=device.name,
        timeout_seconds=action_timeout(action),
        engine_uids=sorted(action.engines.values_list("database_uid", flat=True)),
        params=dict(params),
    )
    log.info("run %s queued action=%s device=%s user=%s", run.pk, action.nexthink_uid, device.uid, user.get_username())
    return run
