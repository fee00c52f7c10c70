"""HTTP API (Litestar): thin routes that decode, call the service layer, and encode."""

from api.app import create_app

__all__ = ["create_app"]
