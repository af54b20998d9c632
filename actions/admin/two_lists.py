"""The help under a two-list selector (filter_horizontal) says how that selector works.

Django gives every multiple-choice list the help of a plain list box ("Hold down Control, or Command
on a Mac, to select more than one"); the two-list selector works otherwise: the items are moved from
the "Available" list to the "Chosen" one, and only the chosen ones are saved.
"""

from django.utils.translation import gettext


class TwoListHelp:
    """Mixed into a ModelAdmin: `two_list_help` gives, per field, what choosing means (and choosing
    none); the help then adds how the selector works, in place of Django's list-box help."""

    two_list_help: dict[str, str] = {}

    class Media:
        js = ["js/admin-a11y.js"]  # names the two-list selectors' search icons for screen readers

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and db_field.name in (*self.filter_horizontal, *self.filter_vertical):
            name = db_field.verbose_name
            meaning = self.two_list_help.get(db_field.name, str(db_field.help_text))
            field.help_text = gettext(
                "%(meaning)s Move %(name)s from “Available %(name)s” to “Chosen %(name)s” with the arrow between "
                "the lists, or by double-clicking; only the chosen %(name)s are saved."
            ) % {"meaning": meaning, "name": name}
        return field
