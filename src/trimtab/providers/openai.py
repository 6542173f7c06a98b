"""Any OpenAI-compatible API: OpenAI, vLLM, Ollama, LM Studio, ..."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from trimtab.config import ProviderConfig
from trimtab.providers.http import HttpProvider
from trimtab.providers.response_fields import openai_error_message
from trimtab.types import Operation, Wire


class OpenAIProvider(HttpProvider):
    wire: Wire = "openai"
    paths: ClassVar[dict[Operation, str]] = {
        "chat": "/chat/completions",
        "embeddings": "/embeddings",
    }

    def __init__(
        self, name: str, config: ProviderConfig, known_secrets: Iterable[str] = ()
    ) -> None:
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        super().__init__(name, config, headers, openai_error_message, known_secrets)
