"""E-mail: a message to TICKETING_EMAIL_TO through Django's e-mail framework (EMAIL_URL).

There is no answer to read a number from, so the reference is the portal's own: ``FMD-`` and the
first 8 characters of the run's id (the run page and the subject show it).
"""

from __future__ import annotations

import smtplib
import uuid

from django.conf import settings
from django.core.mail import EmailMessage

from .base import Attempt, ErrorKind, Opened, TicketContent, TicketError


def reference_of(attempt: Attempt) -> str:
    return "FMD-" + uuid.UUID(attempt.reference).hex[:8].upper()


def open_ticket(content: TicketContent, attempt: Attempt) -> Opened:
    reference = reference_of(attempt)
    employee = content.facts["employee"]
    message = EmailMessage(
        subject=f"[{reference}] {content.short_description}",
        body=content.description,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=settings.TICKETING_EMAIL_TO,
        reply_to=[employee["email"]] if employee["email"] else None,
        headers={"X-Portal-Run": attempt.reference},
    )
    try:
        message.send()
    except smtplib.SMTPServerDisconnected as exc:
        raise TicketError(ErrorKind.UNKNOWN, "The mail server dropped the connection.") from exc
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise TicketError(ErrorKind.PERMANENT, f"The mail server refused the message ({exc}).") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise TicketError(ErrorKind.RETRYABLE, f"The mail could not be sent ({exc.__class__.__name__}).") from exc
    return Opened(number=reference)
