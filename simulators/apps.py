from django.apps import AppConfig


class SimulatorsConfig(AppConfig):
    name = "simulators"
    verbose_name = "Simulators (demo and tests only)"
