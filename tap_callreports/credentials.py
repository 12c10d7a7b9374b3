"""Which authenticator each vendor's settings give: one factory per vendor, chosen by name.

Each binds the vendor's credentials to its API host (auth.py: no other host ever receives them)
and registers their secrets for log redaction. Token URLs get only the client credentials or the
refresh token, with the tap's retry policy (the token-flow options).
"""

from __future__ import annotations

import typing as t

from tap_callreports.auth import BasicAuth, BearerTokenAuth, CallReportsAuth
from tap_callreports.errors import ConfigError
from tap_callreports.oauth import ClientCredentialsAuth, RefreshTokenAuth
from tap_callreports.redact import REGISTRY
from tap_callreports.retry import RetryPolicy

if t.TYPE_CHECKING:
    import logging

    from tap_callreports.settings import MyReportsSettings, Settings, TalkdeskSettings, ZendeskSettings


def talkdesk_authenticator(talkdesk: TalkdeskSettings, token_flow: dict[str, t.Any]) -> CallReportsAuth:
    hosts = [talkdesk.api_url]
    if talkdesk.access_token:
        return BearerTokenAuth(talkdesk.access_token, "talkdesk_access_token", hosts)
    assert talkdesk.token_url and talkdesk.client_id and talkdesk.client_secret
    auth = ClientCredentialsAuth(
        hosts,
        talkdesk.token_url,
        talkdesk.client_id,
        talkdesk.client_secret,
        credential_settings="talkdesk_client_id and talkdesk_client_secret (and talkdesk_account_name or talkdesk_token_url)",
        **token_flow,
    )
    REGISTRY.add_source(auth.secrets)
    return auth


def zendesk_authenticator(zendesk: ZendeskSettings, token_flow: dict[str, t.Any]) -> CallReportsAuth:
    hosts = [zendesk.api_url]
    if zendesk.oauth_token:
        return BearerTokenAuth(zendesk.oauth_token, "zendesk_oauth_token", hosts)
    assert zendesk.email and zendesk.api_token
    auth = BasicAuth(f"{zendesk.email}/token", zendesk.api_token, "zendesk_email and zendesk_api_token", hosts)
    REGISTRY.add(*auth.secrets())
    return auth


def myreports_authenticator(myreports: MyReportsSettings, token_flow: dict[str, t.Any]) -> CallReportsAuth:
    hosts = [myreports.api_url]
    if myreports.refresh_token:  # wins over a static myreports_token
        assert myreports.token_url
        auth = RefreshTokenAuth(
            hosts,
            myreports.token_url,
            myreports.refresh_token,
            myreports.client_id,
            myreports.client_secret,
            credential_settings="myreports_refresh_token (with myreports_client_id and myreports_client_secret)",
            **token_flow,
        )
        REGISTRY.add_source(auth.secrets)
        return auth
    assert myreports.token
    return BearerTokenAuth(myreports.token, "myreports_token", hosts)


def build_authenticator(
    vendor: str,
    factory: t.Callable[[t.Any, dict[str, t.Any]], CallReportsAuth] | None,
    settings: Settings,
    logger: logging.Logger,
) -> CallReportsAuth:
    """The vendor's credentials (`factory`: its authenticator, vendors.py), bound to its API host;
    a ConfigError when the config has none."""
    vendor_settings = getattr(settings, vendor) if factory is not None else None
    if factory is None or vendor_settings is None:
        raise ConfigError(f"{vendor}_*", "is not configured")
    token_flow = {
        "retry_policy": RetryPolicy.of(settings),
        "timeout": settings.request_timeout_seconds,
        "logger": logger,
    }
    return factory(vendor_settings, token_flow)
