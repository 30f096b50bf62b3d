"""The HTTP service: a FastAPI REST API (OpenAPI at /openapi.json, docs at /docs) and the plain JavaScript
dashboard, served by `mediaidx serve` beside the ZeroMQ bridge (docs/web.md)."""

from .app import create_app
from .context import WebContext
from .server import HttpOptions, HttpService

__all__ = ["HttpOptions", "HttpService", "WebContext", "create_app"]
