"""What makes settings unusable, checked when a Settings is made: each check raises
InvalidInput naming the setting."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import InvalidInput

if TYPE_CHECKING:
    from .settings import Settings


def check(settings: Settings) -> None:
    """Refuse settings that cannot work, naming the setting."""
    if not 0 < settings.port < 65536:
        raise InvalidInput(f"port {settings.port} is not a TCP port")
    if settings.key_lifetime_seconds <= 0:
        raise InvalidInput("key_lifetime_seconds must be positive")
    if settings.key_lifetime_seconds > settings.key_lifetime_max_seconds:
        raise InvalidInput("key_lifetime_seconds exceeds key_lifetime_max_seconds")
    for name in ("chat_max_bytes", "ws_send_queue", "chat_burst", "chat_rate_per_second",
                 "ws_heartbeat_seconds", "redeem_base_delay_seconds",
                 "redeem_max_delay_seconds", "redeem_global_failures_per_minute",
                 "sweep_interval_seconds", "delivery_poll_seconds",
                 "delivery_retry_base_seconds", "smtp_timeout_seconds",
                 "handoff_timeout_seconds", "node_heartbeat_seconds",
                 "login_account_max_delay_seconds", "factor_max_delay_seconds",
                 "transcript_code_seconds"):
        if getattr(settings, name) <= 0:
            raise InvalidInput(f"{name} must be positive")
    for name in ("redeem_free_failures", "login_failures_per_minute",
                 "login_account_free_failures", "factor_free_failures", "seats",
                 "delivery_session_limit", "delivery_technician_limit"):
        if getattr(settings, name) < 0:
            raise InvalidInput(f"{name} cannot be negative")
    if settings.oidc_issuer and not (settings.oidc_client_id and settings.oidc_client_secret):
        raise InvalidInput("oidc_issuer needs oidc_client_id and oidc_client_secret")
    if settings.oidc_issuer and not settings.oidc_issuer.startswith(("https://", "http://")):
        raise InvalidInput("oidc_issuer must be an https:// URL")
    if not settings.password_login and not settings.oidc_issuer:
        raise InvalidInput("password_login can be false only with oidc_issuer set")
    if settings.node_timeout_seconds < 2 * settings.node_heartbeat_seconds:
        raise InvalidInput("node_timeout_seconds must be at least twice "
                           "node_heartbeat_seconds")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://",
                                                         "unix://")):
        raise InvalidInput("redis_url must start with redis://, rediss:// or unix://")
    if len(settings.node_name) > 64:
        raise InvalidInput("node_name has at most 64 characters")
    if settings.default_language not in ("en", "de"):
        raise InvalidInput("default_language must be 'en' or 'de'")
    for name in ("sms_backend", "email_backend"):
        if getattr(settings, name) not in ("auto", "console", "off", "twilio", "smtp"):
            raise InvalidInput(f"{name} must be auto, console, off, twilio or smtp")
    if settings.smtp_tls not in ("none", "starttls", "tls"):
        raise InvalidInput("smtp_tls must be none, starttls or tls")
    if settings.delivery_max_attempts < 1:
        raise InvalidInput("delivery_max_attempts must be at least 1")
    _check_transfer(settings)
    _check_rtc(settings)
    origins(settings.widget_origins)  # raises InvalidInput for a malformed origin
    _check_intake(settings)
    _check_webhooks(settings)

def _check_intake(settings: Settings) -> None:
    from .intake.hours import BusinessHours  # raises InvalidInput with what is wrong
    BusinessHours.parse(settings.business_timezone, settings.business_days, settings.business_hours)
    for name in ("intake_address_burst", "intake_address_per_hour",
                 "intake_global_per_minute", "intake_max_waiting",
                 "intake_max_field_chars", "intake_max_text_chars",
                 "intake_queue_update_seconds", "intake_wait_window_seconds"):
        if getattr(settings, name) <= 0:
            raise InvalidInput(f"{name} must be positive")
    if settings.availability_cache_seconds < 0:
        raise InvalidInput("availability_cache_seconds cannot be negative")

def _check_transfer(settings: Settings) -> None:
    for name in ("transfer_max_bytes", "transfer_session_quota_bytes",
                 "transfer_min_free_bytes", "transfer_rate_bytes_per_second",
                 "transfer_total_rate_bytes_per_second", "transfer_retention_seconds"):
        if getattr(settings, name) < 0:
            raise InvalidInput(f"{name} must not be negative")
    for name in ("transfer_upload_expiry_seconds", "transfer_upload_burst",
                 "transfer_upload_rate_per_second"):
        if getattr(settings, name) <= 0:
            raise InvalidInput(f"{name} must be positive")
    if settings.transfer_master_key:
        try:
            key = base64.b64decode(settings.transfer_master_key, validate=True)
        except ValueError as exc:
            raise InvalidInput("transfer_master_key is not base64") from exc
        if len(key) != 32:
            raise InvalidInput("transfer_master_key must be base64 of 32 bytes")
    for item in settings.transfer_allowed_types.split(","):
        extension = item.strip().lstrip(".")
        if item.strip() and not (extension.isalnum() and len(extension) <= 16):
            raise InvalidInput(
                f"transfer_allowed_types: {item.strip()!r} is not a file extension")

def _check_rtc(settings: Settings) -> None:
    for url in settings.ice_server_urls:
        scheme = url.split(":", 1)[0]
        if scheme not in ("stun", "stuns", "turn", "turns") or ":" not in url:
            raise InvalidInput(f"ice_servers: {url!r} is not a stun:, stuns:, turn: or "
                               "turns: URL")
        if scheme in ("turn", "turns") and not settings.turn_secret:
            raise InvalidInput("ice_servers has a TURN URL: set turn_secret (coturn's "
                               "static-auth-secret)")
    if settings.ice_transport_policy not in ("all", "relay"):
        raise InvalidInput("ice_transport_policy must be all or relay")
    for name in ("turn_credential_seconds", "rtc_signal_burst",
                 "rtc_signal_rate_per_second", "rtc_queue_limit", "agent_link_seconds"):
        if getattr(settings, name) <= 0:
            raise InvalidInput(f"{name} must be positive")

def _check_webhooks(settings: Settings) -> None:
    for name in ("webhook_timeout_seconds", "webhook_concurrency", "webhook_poll_seconds",
                 "webhook_disable_after_seconds", "webhook_log_retention_seconds"):
        if getattr(settings, name) <= 0:
            raise InvalidInput(f"{name} must be positive")
    if settings.webhook_rotation_grace_seconds < 0:
        raise InvalidInput("webhook_rotation_grace_seconds cannot be negative")
    if settings.audit_retention_seconds < 0:
        raise InvalidInput("audit_retention_seconds cannot be negative")


def origins(text: str) -> tuple[str, ...]:
    return tuple(_origin(item.strip()) for item in text.split(",") if item.strip())


def _origin(text: str) -> str:
    """One web origin of `widget_origins`, normalised as a browser's Origin header has it."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username is not None or "*" in text):
        raise InvalidInput(f"widget_origins: {text!r} is not an origin like "
                           "https://www.example.com")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")
