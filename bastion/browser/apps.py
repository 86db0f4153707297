from django.apps import AppConfig


class BrowserConfig(AppConfig):
    name = "bastion.browser"
    label = "browser"

    def ready(self) -> None:
        from bastion.browser import scheduling, signals

        signals.connect()
        scheduling.connect()  # also registers the browser.suite schedule kind
