from django.apps import AppConfig


class ErrorsConfig(AppConfig):
    name = "bastion.errors"
    label = "errors"
