from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "bastion.core"
    label = "core"
    verbose_name = "Organizations, accounts and audit"
