import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from actions import platforms
from actions.uids import NQL_ACTION_ID_RE

HEX32 = RegexValidator(r"^[0-9a-f]{32}$", _("Enter 32 lowercase hexadecimal characters."))
# Classic: 32 hexadecimal characters; Infinity: the Collector UID, a UUID. Stored in lower case.
DEVICE_UID = RegexValidator(
    r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    _("Enter the device UID (32 hexadecimal characters) or the Collector UID (a UUID), in lower case."),
)
# Bounds of a curator's numbers: whatever is typed, a submit can compute with it.
MAX_TIMEOUT_SECONDS = settings.NEXTHINK_MAX_TIMEOUT_SECONDS
MAX_COOLDOWN_MINUTES = 7 * 24 * 60
MAX_DAILY_LIMIT = 100
MAX_APPROVAL_HOURS = 30 * 24
# Device's permission (Meta.permissions) as has_perm names it: IT support may run on anyone's device.
RUN_ON_ANY_DEVICE = "actions.run_action_on_any_device"


def max_length(model: type[models.Model], field_name: str) -> int:
    """The max_length of one of `model`'s text fields, to cut what comes from outside to fit."""
    field = model._meta.get_field(field_name)
    if not isinstance(field, models.Field) or field.max_length is None:
        raise TypeError(f"{model.__name__}.{field_name} has no max_length")
    return field.max_length


class CatalogQuerySet(models.QuerySet):
    """The queryset of what the catalog shows (CatalogVersion): its bulk writes, which send no signal,
    move the catalog's version in their own transaction, so that no caller can forget to.

    Saves and deletes of single objects, and m2m changes, send signals: actions/catalog/version.py
    hears those. `catalog_fields`: the only fields whose change matters to the catalog (None: all).
    """

    catalog_fields: frozenset[str] | None = None

    def _matters(self, fields) -> bool:
        return self.catalog_fields is None or not self.catalog_fields.isdisjoint(fields)

    def update(self, **kwargs) -> int:
        if not self._matters(kwargs):
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            count = super().update(**kwargs)
            if count:
                CatalogVersion.bump(self.db)
        return count

    def bulk_create(self, objs, *args, **kwargs):
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            if created:
                CatalogVersion.bump(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs) -> int:
        if not self._matters(fields):
            return super().bulk_update(objs, fields, *args, **kwargs)
        with transaction.atomic(using=self.db):
            count = super().bulk_update(objs, fields, *args, **kwargs)
            if count:
                CatalogVersion.bump(self.db)
        return count

    def delete(self):
        with transaction.atomic(using=self.db):
            deleted = super().delete()
            if deleted[0]:
                CatalogVersion.bump(self.db)
        return deleted

    delete.alters_data = True
    delete.queryset_only = True


class EngineQuerySet(CatalogQuerySet):
    # The cached action holds its Engines for their database UID: the hourly sync's status and
    # sync time must not empty every process's catalog caches.
    catalog_fields = frozenset({"database_uid"})


class Engine(models.Model):
    """A Nexthink Engine, as the List Engines API reports it."""

    database_uid = models.CharField(_("database UID"), max_length=32, unique=True, validators=[HEX32])
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=255, blank=True)
    port = models.PositiveIntegerField(_("port"), null=True, blank=True)
    nxql_port = models.PositiveIntegerField(_("NXQL port"), default=1671)
    status = models.CharField(_("status"), max_length=40, blank=True)
    last_synced_at = models.DateTimeField(_("last synced at"), null=True, blank=True)

    objects = EngineQuerySet.as_manager()

    class Meta:
        verbose_name = _("engine")
        verbose_name_plural = _("engines")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or self.database_uid


class Category(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    display_order = models.PositiveIntegerField(_("display order"), default=100)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["display_order", "name"]

    def __str__(self) -> str:
        return self.name


class RemoteAction(models.Model):
    """An IT-approved Nexthink remote action that employees may run on their own device."""

    class Icon(models.TextChoices):
        WRENCH = "wrench", _("Wrench")
        BROOM = "broom", _("Broom")
        WIFI = "wifi", _("Network")
        SHIELD = "shield", _("Shield")
        PRINTER = "printer", _("Printer")
        CHAT = "chat", _("Chat")
        DISK = "disk", _("Disk")
        RESTART = "restart", _("Restart")

    class Kind(models.TextChoices):
        # Infinity runs both; classic knows remote actions only (the catalog hides workflows there).
        REMOTE_ACTION = "remote_action", _("Remote action")
        WORKFLOW = "workflow", _("Workflow (Nexthink Infinity)")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    summary = models.CharField(_("short description"), max_length=200, blank=True)
    description = models.TextField(
        _("long description"),
        blank=True,
        help_text=_("What it does, how long it takes, what the employee will notice."),
    )
    kind = models.CharField(
        _("kind"),
        max_length=20,
        choices=Kind.choices,
        default=Kind.REMOTE_ACTION,
        help_text=_("What Nexthink runs: a remote action, or (Infinity) a workflow of several steps."),
    )
    nexthink_uid = models.UUIDField(_("Nexthink remote action UID"), unique=True)
    # Nexthink Infinity runs an action by its NQL id ("#clear_teams_cache"); nexthink_uid then holds the
    # action's uuid from the Remote Actions API. Blank for a classic-only action.
    nql_id = models.CharField(
        _("Nexthink Infinity NQL id"),
        max_length=256,
        blank=True,
        default="",
        validators=[
            RegexValidator(
                NQL_ACTION_ID_RE, _("Enter the NQL id: # then letters, digits, _ or -, like #clear_teams_cache.")
            )
        ],
        help_text=_("Infinity: the remote action's NQL id, as import_remote_actions sets it."),
    )
    output_labels = models.JSONField(
        _("output labels"),
        default=dict,
        blank=True,
        help_text=_(
            "Infinity: the label of each of the action's outputs, by output id (set by import_remote_actions)."
        ),
    )
    # Which systems the script exists for: Infinity's import sets them (hasScriptWindows, hasScriptMacOs);
    # on classic the curator does. A device of another system is not offered the action.
    runs_on_windows = models.BooleanField(
        _("runs on Windows"), default=True, help_text=_("The action's script exists for Windows devices.")
    )
    runs_on_macos = models.BooleanField(
        _("runs on macOS"), default=True, help_text=_("The action's script exists for Macs.")
    )
    enabled = models.BooleanField(_("enabled"), default=False)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions", verbose_name=_("category")
    )
    icon = models.CharField(_("icon"), max_length=20, choices=Icon.choices, default=Icon.WRENCH)
    display_order = models.PositiveIntegerField(_("display order"), default=100)
    featured = models.BooleanField(_("featured"), default=False)
    keywords = models.TextField(
        _("search keywords"),
        blank=True,
        help_text=_(
            "Other words employees may type when they look for this action, separated by commas: "
            "the names they use for the problem or the program (e.g. printer, printing, print queue). "
            "The catalog's search finds the action by these words too."
        ),
    )
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="remote_actions",
        help_text=_("Who may see and run it. None: every employee."),
        verbose_name=_("groups"),
    )
    timeout_seconds = models.PositiveIntegerField(
        _("timeout seconds"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TIMEOUT_SECONDS)],
        help_text=_("1 to 3,600 seconds. Overrides NEXTHINK_DEFAULT_TIMEOUT_SECONDS for this action."),
    )
    engines = models.ManyToManyField(
        Engine,
        blank=True,
        related_name="remote_actions",
        help_text=_("Engines to target. None: all Engines."),
        verbose_name=_("engines"),
    )
    confirmation_text = models.TextField(
        _("confirmation text"), blank=True, help_text=_("Shown before running; the employee must confirm.")
    )
    cooldown_minutes = models.PositiveIntegerField(
        _("cooldown minutes"),
        default=0,
        validators=[MaxValueValidator(MAX_COOLDOWN_MINUTES)],
        help_text=_("Not again on the same device within this many minutes (at most a week: 10,080). 0: no cooldown."),
    )
    daily_limit_per_user = models.PositiveIntegerField(
        _("daily limit per user"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DAILY_LIMIT)],
        help_text=_("Runs per employee per day, 1 to 100. Empty: no limit."),
    )
    message_before = models.TextField(
        _("message before"), blank=True, help_text=_("Shown on the action page, above the form.")
    )
    message_during = models.TextField(
        _("message during"),
        blank=True,
        help_text=_(
            "Shown on the run page while the run is on its way or waiting for the device "
            "(e.g. “Teams will close for a minute”)."
        ),
    )
    message_after = models.TextField(
        _("message after"), blank=True, help_text=_("Shown on the run page once the run is sent.")
    )
    ticket_category = models.CharField(
        _("ticket category"),
        max_length=100,
        blank=True,
        help_text=_(
            "The service desk's category for a ticket about this action (ServiceNow: the incident's "
            "category value). Empty: TICKETING_DEFAULT_CATEGORY."
        ),
    )
    approver_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approvable_actions",
        help_text=_("Runs of it wait until a member of this group approves them. Empty: it runs at once."),
        verbose_name=_("approver group"),
    )
    approval_hours = models.PositiveIntegerField(
        _("approval hours"),
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_APPROVAL_HOURS)],
        help_text=_("Hours the approvers have to decide (1 to 720); then the request ends without running."),
    )
    ticket_assignment_group = models.CharField(
        _("ticket assignment group"),
        max_length=100,
        blank=True,
        help_text=_("ServiceNow: the assignment group (its name) for tickets about this action. Empty: none set."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("remote action")
        verbose_name_plural = _("remote actions")
        ordering = ["display_order", "name"]
        constraints = [
            # A remote action and a workflow may share an NQL id: Nexthink names each kind on its own.
            models.UniqueConstraint(
                fields=["kind", "nql_id"], condition=~models.Q(nql_id=""), name="unique_nql_id_per_kind_when_set"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("action_detail", kwargs={"slug": self.slug})


class ActionParameter(models.Model):
    """One input of a remote action's script; `name` is sent to Nexthink exactly as written."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        TEXTAREA = "textarea", _("Multi-line text")
        CHOICE = "choice", _("Choice")
        BOOLEAN = "boolean", _("Yes/no")
        INTEGER = "integer", _("Integer")

    action = models.ForeignKey(
        RemoteAction, on_delete=models.CASCADE, related_name="parameters", verbose_name=_("action")
    )
    name = models.CharField(_("Nexthink name"), max_length=100)
    label = models.CharField(_("label"), max_length=120)
    help_text = models.CharField(_("help text"), max_length=300, blank=True)
    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices, default=Kind.TEXT)
    choices = models.TextField(
        _("choices"), blank=True, help_text=_("For a choice: one per line, as `value` or `value|Label`.")
    )
    default = models.CharField(_("default"), max_length=1000, blank=True)
    required = models.BooleanField(_("required"), default=True)
    max_length = models.PositiveIntegerField(_("max length"), null=True, blank=True, validators=[MinValueValidator(1)])
    min_value = models.BigIntegerField(_("min value"), null=True, blank=True)
    max_value = models.BigIntegerField(_("max value"), null=True, blank=True)
    regex = models.CharField(_("validation regex"), max_length=500, blank=True)
    regex_message = models.CharField(_("regex error message"), max_length=200, blank=True)
    display_order = models.PositiveIntegerField(_("display order"), default=100)
    # Which systems' scripts read this input (Infinity: usedByWindows, usedByMacOs): the form asks for
    # it only when the chosen device runs one of them.
    used_by_windows = models.BooleanField(_("used on Windows"), default=True)
    used_by_macos = models.BooleanField(_("used on macOS"), default=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        verbose_name = _("action parameter")
        verbose_name_plural = _("action parameters")
        ordering = ["display_order", "id"]
        constraints = [models.UniqueConstraint(fields=["action", "name"], name="unique_parameter_name_per_action")]

    def __str__(self) -> str:
        return f"{self.action}: {self.name}"


class Device(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", _("Manual")
        IMPORT = "import", _("Import")
        NXQL = "nxql", _("NXQL")
        NQL = "nql", _("NQL (Nexthink Infinity)")

    uid = models.CharField(_("device UID"), max_length=36, unique=True, validators=[DEVICE_UID])
    name = models.CharField(_("name"), max_length=255)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="devices",
        verbose_name=_("owner"),
    )
    engine = models.ForeignKey(
        Engine, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices", verbose_name=_("engine")
    )
    # The device's system, as Nexthink reports it (NQL device.operating_system.platform, NXQL's platform);
    # "unknown": every action is offered for it.
    platform = models.CharField(_("platform"), max_length=10, choices=platforms.CHOICES, default=platforms.UNKNOWN)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.MANUAL)
    confirmed_at = models.DateTimeField(
        _("confirmed at"), null=True, blank=True, help_text=_("When the owner was last confirmed.")
    )

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["name"]
        permissions = [("run_action_on_any_device", "Can run an action on any device (IT support)")]

    def __str__(self) -> str:
        return self.name or self.uid


class Run(models.Model):
    """One request to run an action on one device. Its id is sent to Nexthink as requestUid."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        RETRYING = "retrying", _("Retrying")
        SENT = "sent", _("Sent")  # Nexthink accepted it for the device: not proof that it ran
        PARTIAL = "partial", _("Partly sent")
        FAILED = "failed", _("Not sent")
        UNKNOWN = "unknown", _("Outcome unknown")
        # A platform that reports the device's own result (Nexthink Infinity) follows the run up.
        FOLLOWING = "following", _("Sent, waiting for the device")
        DONE = "done", _("Done on the device")
        DEVICE_FAILED = "device_failed", _("Failed on the device")
        EXPIRED = "expired", _("Expired")
        # An action that needs approval (RemoteAction.approver_group): nothing is sent before it is approved.
        WAITING_APPROVAL = "waiting_approval", _("Waiting for approval")
        DENIED = "denied", _("Not approved")
        APPROVAL_EXPIRED = "approval_expired", _("Not approved in time")
        CANCELLED = "cancelled", _("Cancelled")

    # Not stored: set on the run `submit` returns; after commit, whether the broker took the task
    # (None until then). An annotation only, for the type checker: no class attribute, no column.
    enqueued: bool | None

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own for user, device, status: the composite indexes below start with them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs", db_index=False, verbose_name=_("user")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs_requested",
        help_text=_("The IT staff member who ran it for the user, if not the user."),
        verbose_name=_("requested by"),
    )
    action = models.ForeignKey(
        RemoteAction, null=True, on_delete=models.SET_NULL, related_name="runs", verbose_name=_("action")
    )
    device = models.ForeignKey(
        Device, null=True, on_delete=models.SET_NULL, related_name="runs", db_index=False, verbose_name=_("device")
    )
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", verbose_name=_("retry of")
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, blank=True)
    # Snapshot: what was sent, as it was at submit time.
    action_name = models.CharField(_("action name"), max_length=120)
    action_uid = models.UUIDField(_("action UID"))
    action_nql_id = models.CharField(_("action NQL id"), max_length=255, blank=True)
    action_kind = models.CharField(
        _("action kind"), max_length=20, choices=RemoteAction.Kind.choices, default=RemoteAction.Kind.REMOTE_ACTION
    )
    device_uid = models.CharField(_("device UID"), max_length=36)
    device_name = models.CharField(_("device name"), max_length=255, blank=True)
    timeout_seconds = models.PositiveIntegerField(_("timeout seconds"))
    engine_uids = models.JSONField(_("Engine UIDs"), default=list, blank=True)
    params = models.JSONField(_("params"), default=dict, blank=True)
    # Progress.
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveIntegerField(_("max attempts"), default=5)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    enqueued_at = models.DateTimeField(
        _("enqueued at"), null=True, blank=True, help_text=_("When the broker last took this run.")
    )
    error_code = models.CharField(_("error code"), max_length=60, blank=True)
    error_kind = models.CharField(_("error kind"), max_length=10, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sending_at = models.DateTimeField(_("sending at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    # The device's own result, where the platform reports it (Nexthink Infinity).
    request_id = models.CharField(_("Nexthink request ID"), max_length=64, blank=True)
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("When Nexthink stops waiting for the device.")
    )
    device_status = models.CharField(
        _("device status"), max_length=40, blank=True, help_text=_("The execution's status, as Nexthink says.")
    )
    device_status_details = models.TextField(_("device status details"), blank=True)
    outputs = models.JSONField(_("outputs"), default=dict, blank=True)
    next_check_at = models.DateTimeField(_("next check at"), null=True, blank=True)
    checks = models.PositiveIntegerField(_("checks"), default=0)
    # Approval, for an action that needs it: why the employee asks, who may decide until when, the decision.
    reason = models.CharField(_("employee's reason"), max_length=300, blank=True)
    approver_group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs_to_approve",
        verbose_name=_("approver group"),
    )
    approval_expires_at = models.DateTimeField(_("approval expires at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs_decided",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_comment = models.TextField(_("decision comment"), blank=True, max_length=1000)
    # Claimed (a conditional update) by the one delivery of notify_approvers that sends the e-mail.
    approvers_notified_at = models.DateTimeField(_("approvers notified at"), null=True, blank=True)
    # The employee's side: did they see the final status, and did it fix their problem?
    final_seen_at = models.DateTimeField(
        _("final seen at"),
        null=True,
        blank=True,
        help_text=_("When the employee's page first showed the run as final."),
    )
    # Claimed (a conditional update) by the reaper's pass that mails the run (actions/runs/notify.py).
    notified_at = models.DateTimeField(
        _("notified at"),
        null=True,
        blank=True,
        help_text=_("When the run-ended e-mail was sent (or its sending began)."),
    )
    fixed = models.BooleanField(_("fixed the problem"), null=True, blank=True)
    feedback_comment = models.TextField(_("feedback comment"), blank=True, max_length=1000)
    feedback_at = models.DateTimeField(_("feedback at"), null=True, blank=True)

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-created_at"]
        indexes = [
            # Insights: runs in a period, grouped by action (actions/insights.py).
            models.Index(fields=["created_at", "action"], name="run_created_action_idx"),
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["device", "action", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
            # The runs admin's searches: a device UID, a device or action name exactly (newest first,
            # straight from the index however many runs match) or by their start.
            models.Index(fields=["device_uid", "created_at"], name="run_device_uid_created"),
            models.Index(
                fields=["device_name", "created_at"],
                name="run_device_name_created",
                opclasses=["varchar_pattern_ops", "timestamptz_ops"],
            ),
            models.Index(
                fields=["action_name", "created_at"],
                name="run_action_name_created",
                opclasses=["varchar_pattern_ops", "timestamptz_ops"],
            ),
            # The follow-up's due runs, and only those.
            models.Index(fields=["next_check_at"], condition=models.Q(status="following"), name="run_follow_up_due"),
            # The runs that ended while their page was closed and were not mailed yet: the e-mail pass.
            models.Index(
                fields=["finished_at"],
                condition=models.Q(notified_at__isnull=True, final_seen_at__isnull=True, finished_at__isnull=False),
                name="run_unseen_end",
            ),
            # The approvals waiting: the approvers' page and the expiry sweep.
            models.Index(
                fields=["approval_expires_at"], condition=models.Q(status="waiting_approval"), name="run_approval_due"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="unique_idempotency_key_per_user",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action_name} on {self.device_name or self.device_uid} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("run_detail", kwargs={"pk": self.pk})


class RunAttempt(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("run"))
    number = models.PositiveIntegerField(_("number"))
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, blank=True)
    error_code = models.CharField(_("error code"), max_length=60, blank=True)
    error_message = models.TextField(_("error message"), blank=True)

    class Meta:
        verbose_name = _("run attempt")
        verbose_name_plural = _("run attempts")
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="unique_attempt_number")]

    def __str__(self) -> str:
        # Shown by the run's admin page, on each attempt's row: in the reader's language.
        return gettext("attempt %(number)d: %(outcome)s") % {
            "number": self.number,
            "outcome": self.outcome or gettext("in progress"),
        }


class EngineResult(models.Model):
    """What one Engine answered to a run: sent is not the same as completed on the device."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="engine_results", verbose_name=_("run"))
    database_uid = models.CharField(_("database UID"), max_length=64)
    engine_name = models.CharField(_("engine name"), max_length=200, blank=True)
    code = models.CharField(_("code"), max_length=100)  # as Nexthink sent it (truncated), known or not
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("engine result")
        verbose_name_plural = _("engine results")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.engine_name or self.database_uid}: {self.code}"


class Preferences(models.Model):
    """An employee's own choices: a row only once they change a default."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences", verbose_name=_("user")
    )
    email_when_run_ends = models.BooleanField(
        _("e-mail me when a run ends after I left its page"),
        default=True,
    )
    # A code of settings.LANGUAGES; blank: the browser's language (actions.accounts.language).
    language = models.CharField(_("language"), max_length=8, blank=True, default="")

    class Meta:
        verbose_name = _("preferences")
        verbose_name_plural = _("preferences")

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class Heartbeat(models.Model):
    """A background process saying it is alive: the worker and beat each write one every half minute."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    seen_at = models.DateTimeField(_("seen at"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"


class RunInsight(Run):
    """Not a table: the admin's "Insights" page hangs on it (actions/admin/insights.py)."""

    class Meta:
        proxy = True
        verbose_name = _("insight")
        verbose_name_plural = _("insights")


class Ticket(models.Model):
    """The service desk ticket an employee asked for about one run: at most one per run."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        SENDING = "sending", _("Being opened")
        CREATED = "created", _("Created")
        FAILED = "failed", _("Failed")

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="ticket", verbose_name=_("run"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.REQUESTED)
    backend = models.CharField(_("backend"), max_length=20)
    number = models.CharField(
        _("number"), max_length=100, blank=True, help_text=_("The service desk's reference, e.g. INC0010001.")
    )
    external_id = models.CharField(
        _("external ID"), max_length=100, blank=True, help_text=_("ServiceNow: the incident's sys_id.")
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # A previous attempt may have opened the ticket (no usable answer came): look it up before creating.
    uncertain = models.BooleanField(_("uncertain"), default=False)
    error = models.TextField(_("error"), blank=True)
    run_url = models.URLField(
        _("run url"), max_length=500, blank=True, help_text=_("The run's page, at PORTAL_BASE_URL.")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(
        _("requested at"), help_text=_("When the employee last asked (the deadline counts from here).")
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # When its create_ticket task was last handed to the broker (the sweep hands it again when lost).
    enqueued_at = models.DateTimeField(_("enqueued at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "requested_at"], name="ticket_state_requested_idx")]

    def __str__(self) -> str:
        return self.number or f"ticket for run {self.run_id} ({self.get_state_display()})"


class CompanyIdentity(models.Model):
    """The company account a portal user signs in with: the OpenID Connect issuer and subject.

    The directory may give a user name to someone else later; the subject it never reuses. A
    returning employee is found by (issuer, subject), whatever their name claim says now.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_identity", verbose_name=_("user")
    )
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_sign_in_at = models.DateTimeField(_("last sign in at"), null=True, blank=True)

    class Meta:
        verbose_name = _("company identity")
        verbose_name_plural = _("company identities")
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="company_identity_iss_sub_unique")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class CatalogVersion(models.Model):
    """One row whose number changes with every change to what the catalog shows (actions, categories,
    who sees what): the catalog's first page is cached per version and combination of groups.
    CatalogQuerySet's bulk writes and the receivers of actions/catalog/version.py move it."""

    number = models.BigIntegerField(_("number"), default=0)

    class Meta:
        verbose_name = _("catalog version")
        verbose_name_plural = _("catalog versions")

    def __str__(self) -> str:
        return f"catalog version {self.number}"

    @classmethod
    def bump(cls, using: str | None = None) -> None:
        """A new number, in the caller's transaction: every cache key built on the old one is unused."""
        versions = cls.objects.using(using)
        if not versions.filter(pk=1).update(number=F("number") + 1):
            versions.get_or_create(pk=1, defaults={"number": 1})


class ApiClient(models.Model):
    """A program (a service desk, a chat assistant) that calls the portal's API on behalf of employees.

    Its secret is shown once when made and stored only as a SHA-256 digest (a random 256-bit token
    needs no slow hash); a revoked or expired client is refused at once (actions/apiclients/).
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who at IT answers for this client."),
        verbose_name=_("owner"),
    )
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    actions = models.ManyToManyField(
        "RemoteAction",
        blank=True,
        related_name="+",
        help_text=_("Only these actions (none here nor below: all)."),
        verbose_name=_("actions"),
    )
    categories = models.ManyToManyField(
        Category,
        blank=True,
        related_name="+",
        help_text=_("Only the actions of these categories (with those above)."),
        verbose_name=_("categories"),
    )
    expires_at = models.DateTimeField(
        _("expires at"), null=True, blank=True, help_text=_("Refused from then on; empty: never expires.")
    )
    secret_hash = models.CharField(_("secret hash"), max_length=64, unique=True, editable=False)
    secret_hint = models.CharField(
        _("secret hint"), max_length=12, blank=True, editable=False, help_text=_("The secret's first characters.")
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiCall(models.Model):
    """One call to the API: which client, for whom, what, and the answer's status (and refusal type)."""

    client = models.ForeignKey(
        ApiClient, null=True, on_delete=models.SET_NULL, related_name="calls", verbose_name=_("client")
    )
    client_name = models.CharField(_("client name"), max_length=100, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=255)
    employee = models.CharField(_("employee"), max_length=254, blank=True)
    status = models.PositiveSmallIntegerField(_("status"))
    problem = models.CharField(_("problem"), max_length=40, blank=True, help_text=_("The refusal's type, if refused."))
    run_id = models.UUIDField(_("run ID"), null=True, blank=True)

    class Meta:
        verbose_name = _("API call")
        verbose_name_plural = _("API calls")
        ordering = ["-at"]
        # The rate limit counts a client's calls of the last minute.
        indexes = [models.Index(fields=["client", "at"], name="apicall_client_at_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
