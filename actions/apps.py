from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from actions import metrics
        from actions.accounts.language import remember_language
        from actions.accounts.middleware import start_session_clock
        from actions.audit import audit_register
        from actions.catalog import version  # noqa: F401  (its receivers: the catalog's version)
        from actions.views.nav import remember_approver

        audit_register()
        user_logged_in.connect(start_session_clock, dispatch_uid="actions.accounts.start_session_clock")
        user_logged_in.connect(remember_language, dispatch_uid="actions.accounts.remember_language")
        user_logged_in.connect(remember_approver, dispatch_uid="actions.views.nav.remember_approver")
        user_login_failed.connect(
            lambda **kwargs: metrics.sign_in_failed(), weak=False, dispatch_uid="actions.metrics.sign_in_failed"
        )
