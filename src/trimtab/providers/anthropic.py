"""Anthropic's Messages API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from trimtab.config import ProviderConfig
from trimtab.providers.http import HttpProvider
from trimtab.providers.response_fields import anthropic_error_message
from trimtab.types import Operation, Wire


class AnthropicProvider(HttpProvider):
    wire: Wire = "anthropic"
    paths: ClassVar[dict[Operation, str]] = {"chat": "/v1/messages"}

    def __init__(
        self, name: str, config: ProviderConfig, known_secrets: Iterable[str] = ()
    ) -> None:
        headers = {"anthropic-version": config.anthropic_version}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        super().__init__(name, config, headers, anthropic_error_message, known_secrets)
