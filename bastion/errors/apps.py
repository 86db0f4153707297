from django.apps import AppConfig


class ErrorsConfig(AppConfig):
    name = "bastion.errors"
    label = "errors"

    def ready(self) -> None:
        from django.conf import settings

        from bastion.errors import dogfood

        dogfood.setup(settings.CONFIG.dogfood_dsn)
