from django.apps import AppConfig


class BrowserConfig(AppConfig):
    name = "bastion.browser"
    label = "browser"
