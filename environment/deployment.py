"""Deployment files: where each served model lives, so task files can name models only.

    models:
      llama-3.1-70b: {base_url: http://127.0.0.1:8001/v1, params: 70e9, api_key_env: VLLM_KEY}
      smollm2: {base_url: embedded, params: 135e6}

`base_url: embedded` means the server that agenttts starts itself (see `agenttts serve`). Keys are
never stored here: `api_key_env` names the environment variable to read at call time.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class DeploymentError(ValueError):
    pass


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="OpenAI-compatible base URL ending in /v1, or 'embedded'")
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

    def api_key(self) -> str:
        """Read at call time, never persisted; local servers accept any non-empty key."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "EMPTY")
        return "EMPTY"


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, Endpoint]

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except FileNotFoundError:
            raise DeploymentError(f"missing deployment file {p}") from None
        except yaml.YAMLError as e:
            raise DeploymentError(f"deployment file {p} is not valid YAML: {e}") from None
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            msgs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            raise DeploymentError(f"deployment file {p}: {msgs}") from None
