"""The network side: ``Client`` (one shared Session, auth, retries, streams)."""

from kubesync.client.client import Client, LineStream, RetryPolicy

__all__ = ["Client", "LineStream", "RetryPolicy"]
