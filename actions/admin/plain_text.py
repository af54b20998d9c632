"""Admin text fields refuse invisible control characters, as the employee's forms do."""

from django import forms

from actions.catalog.parameters import refuse_control_characters


class PlainTextAdmin:
    """Mixed into a ModelAdmin or an inline: every text field of its form refuses control characters
    (ESC, BEL, NUL...; tabs and line breaks stay allowed), which would otherwise reach employees'
    pages, e-mails and tickets as they are."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        text = isinstance(field, forms.CharField) and not isinstance(field, forms.UUIDField)
        if text and refuse_control_characters not in field.validators:
            field.validators.append(refuse_control_characters)
        return field
