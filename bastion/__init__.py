"""Bastion: self-hosted security automation platform."""

__version__ = "0.1.0"
