from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "bastion.web"
    label = "web"
