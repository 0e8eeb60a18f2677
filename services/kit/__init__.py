"""The shared service kit: app factory, health, metrics, settings, NATS/JetStream helpers."""

from services.kit.app import Kit, create_app, get_kit, service_state
from services.kit.health import Check
from services.kit.settings import FollowerSettings, KitSettings, url_of

__all__ = ["Check", "FollowerSettings", "Kit", "KitSettings", "create_app", "get_kit", "service_state",
           "url_of"]
