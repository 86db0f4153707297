from django.apps import AppConfig


class BrowserConfig(AppConfig):
    name = "bastion.browser"
    label = "browser"

    def ready(self) -> None:
        from bastion.browser import signals

        signals.connect()
