"""A run in every status, as the lifecycle leaves it: the fields, times and answers each status has.

Tests of what pages say about a run build it here, so that a new status or a new field is added once.
"""

from datetime import timedelta

from django.utils import timezone

from actions.models import EngineResult, Run
from actions.nexthink.classic.client import EngineCode
from actions.nexthink.platform import EXPIRED, FAILURE, IN_PROGRESS, SUCCESS, WAITING, DeviceResult
from actions.runs.outcomes import NOT_SENT, WORKER_LOST, device_outcome
from actions.runs.submit import run_submit

Status = Run.Status
ENGINE = "86acc8511251ec444d3a75bac33a23c7"
OTHER_ENGINE = "a4690014774dcc32b919c27d616166f7"
# Nexthink Infinity's statuses: the run is followed up with a request ID.
FOLLOWED = {Status.FOLLOWING, Status.DONE, Status.DEVICE_FAILED, Status.EXPIRED}
DEVICE_RESULT = {Status.DONE: SUCCESS, Status.DEVICE_FAILED: FAILURE, Status.EXPIRED: EXPIRED}
# Ends of a request for approval: never sent; the words the approvals module writes.
APPROVAL_ENDS = {
    Status.DENIED: "",
    Status.APPROVAL_EXPIRED: "Nobody approved this request in time, so nothing was sent.",
    Status.CANCELLED: "You cancelled this request, so nothing was sent.",
}
NEVER_SENT = {Status.QUEUED, Status.WAITING_APPROVAL, *APPROVAL_ENDS}


def run_in(status: str, *, user, action, device, params: dict | None = None) -> Run:
    """A run of `action` by `user` on `device`, submitted a minute ago and now in `status`."""
    run = run_submit(user=user, action=action, device=device, params=params or {}, idempotency_key=f"state-{status}")
    now = timezone.now()
    fields: dict = {"status": status, "created_at": now - timedelta(minutes=1)}
    if status not in NEVER_SENT:
        fields |= {"attempts": 1, "sending_at": now - timedelta(seconds=50)}
    if status == Status.WAITING_APPROVAL or status in APPROVAL_ENDS:
        fields |= {"reason": "Teams will not start", "approval_expires_at": now + timedelta(hours=23)}
    if status in APPROVAL_ENDS:
        fields |= {"error_message": APPROVAL_ENDS[status], "finished_at": now - timedelta(seconds=40)}
    if status == Status.DENIED:
        fields |= {"decided_at": now - timedelta(seconds=40), "decision_comment": "Use the VPN fix first"}
    if status == Status.RETRYING:
        fields |= {
            "error_code": "HTTP_503",
            "error_kind": "retryable",
            "error_message": "Nexthink was busy or unavailable and did not take the request.",
            "next_attempt_at": now + timedelta(seconds=20),
        }
    if status in FOLLOWED:
        fields |= {
            "request_id": "3f1c2b7a-1111-4222-8333-944455556666",
            "expires_at": now + timedelta(minutes=59),
            "device_status": WAITING,
        }
    if status == Status.FOLLOWING:
        fields["device_status"] = IN_PROGRESS
    if status == Status.FAILED:
        fields |= {"error_code": NOT_SENT.code, "error_kind": NOT_SENT.kind, "error_message": NOT_SENT.message}
    if status == Status.UNKNOWN:
        fields |= {"error_code": WORKER_LOST.code, "error_kind": WORKER_LOST.kind, "error_message": WORKER_LOST.message}
    if status in DEVICE_RESULT:
        outcome = device_outcome(status, DeviceResult(status=DEVICE_RESULT[status], details="Exit code 0"))
        fields |= outcome.fields | {"error_code": outcome.code, "error_message": outcome.message}
    if status in (Status.SENT, Status.PARTIAL, Status.FAILED, Status.UNKNOWN, *DEVICE_RESULT):
        fields["finished_at"] = now - timedelta(seconds=40)
    Run.objects.filter(pk=run.pk).update(**fields)
    if status in (Status.SENT, Status.PARTIAL):
        EngineResult.objects.create(run=run, database_uid=ENGINE, engine_name="engine-emea", code="ok")
    if status == Status.PARTIAL:
        EngineResult.objects.create(
            run=run, database_uid=OTHER_ENGINE, engine_name="engine-amer", code=EngineCode.NOT_CONNECTED.value
        )
    run.refresh_from_db()
    return run
