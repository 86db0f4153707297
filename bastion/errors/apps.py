from django.apps import AppConfig


class ErrorsConfig(AppConfig):
    name = "bastion.errors"
    label = "errors"

    def ready(self) -> None:
        from django.conf import settings

        from bastion.core.blobs import delete_files_with
        from bastion.errors import digest, dogfood  # noqa: F401 - digest registers its schedule
        from bastion.errors.models import Attachment

        delete_files_with(Attachment, "file")

        dogfood.setup(settings.CONFIG.dogfood_dsn)
