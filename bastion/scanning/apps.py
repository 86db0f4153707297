from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "bastion.scanning"
    label = "scanning"

    def ready(self) -> None:
        from bastion.core.blobs import delete_files_with
        from bastion.scanning import scheduling, signals
        from bastion.scanning.models import FindingAttachment, ScanReport
        from bastion.scanning.reports import tally

        delete_files_with(FindingAttachment, "file")
        delete_files_with(ScanReport, "file")

        signals.connect()
        scheduling.connect()  # also registers the 'scan' schedule handler
        tally.connect()
