"""Deployment files: where each served model lives, so task files can name models only.

    models:
      llama-3.1-70b: {base_url: http://127.0.0.1:8001/v1, params: 70e9, api_key_env: VLLM_KEY}
      smollm2: {base_url: embedded, params: 135e6}
      qwen2.5-7b: {base_urls: [http://10.0.0.1:8000/v1, http://10.0.0.2:8000/v1], params: 7e9}

`base_url: embedded` means the server that agenttts starts itself (see `agenttts serve`).
`base_urls` lists replicas of one served model (same weights): requests go to the least busy one,
and the sample cache is shared by all of them. Keys are never stored here: `api_key_env` names
the environment variable to read at call time (`api_key_from`, the one reader of a key, for the
pipeline's endpoints and the agent's alike).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from agenttts.environment.user_files import STRICT, load_yaml, validation_problems
from agenttts.errors import InputError

#: The key sent to a server when no key is named, or the named variable is unset or empty: local
#: servers (vLLM without --api-key) accept any non-empty key.
NO_KEY = "EMPTY"


def api_key_from(env_name: str | None) -> str:
    """The key in the environment variable `env_name`, read at call time and never persisted;
    an unset or empty variable is no key (`NO_KEY`)."""
    return (os.environ.get(env_name) if env_name else None) or NO_KEY


class Endpoint(BaseModel):
    model_config = STRICT

    base_url: str = Field(
        description="OpenAI-compatible base URL ending in /v1, or 'embedded'; with `base_urls` "
        "given, the first of them"
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="replicas of this model (several servers, same weights), instead of base_url",
    )
    revision: str | None = Field(
        default=None,
        description="what the weights are (e.g. a hub commit): the sample cache keys on it "
        "instead of on what the server reports about the model",
    )
    params: float = Field(gt=0)
    served_name: str | None = Field(default=None, description="name the server knows; default: key")
    api_key_env: str | None = Field(
        default=None, description="environment variable holding the key"
    )
    max_concurrency: int = Field(default=8, ge=1)
    supports_n: bool = Field(default=True, description="server honours n>1 in one request")
    # What `agenttts serve --print-vllm` needs to write the vLLM command for a GPU deployment.
    hf_model: str | None = None
    tensor_parallel_size: int = Field(default=1, ge=1)
    port: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_url_form(cls, raw: Any) -> Any:
        """`base_url` or `base_urls` (both only as a dump gives them); afterwards both are set,
        the list holding every replica."""
        if not isinstance(raw, dict):
            return raw
        urls = raw.get("base_urls")
        if urls is None:
            return {**raw, "base_urls": [raw["base_url"]]} if "base_url" in raw else raw
        if "base_url" in raw and raw["base_url"] != (urls[:1] or [None])[0]:
            raise ValueError("give base_url (one server) or base_urls (replicas), not both")
        if not isinstance(urls, list) or not urls:
            raise ValueError("base_urls must be a non-empty list of URLs")
        if "embedded" in urls and len(urls) > 1:
            raise ValueError("the embedded server cannot be one of several replicas")
        if len(set(urls)) != len(urls):
            raise ValueError("base_urls lists a URL twice")
        return {**raw, "base_url": urls[0]}

    def api_key(self) -> str:
        return api_key_from(self.api_key_env)


class Deployment(BaseModel):
    model_config = STRICT

    models: dict[str, Endpoint]

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        """The deployment file at `path`; `InputError` (an `UnreadableFile` for a file that does
        not read as YAML) naming every problem otherwise."""
        raw = load_yaml(path, "deployment file")
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            msgs = "; ".join(f"{f}: {m}" for f, m in validation_problems(e, raw))
            raise InputError(f"deployment file {path}: {msgs}") from None
