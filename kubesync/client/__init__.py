"""The network side: ``Client`` (one shared Session, auth, retries, streams)."""

from kubesync.client.channels import ReadStream
from kubesync.client.client import Client, LineStream, RetryPolicy
from kubesync.client.podexec import ExecProcess, ExecResult, StdinWriter
from kubesync.client.portforward import PortForward, PortForwardStream

__all__ = ["Client", "ExecProcess", "ExecResult", "LineStream", "PortForward",
           "PortForwardStream", "ReadStream", "RetryPolicy", "StdinWriter"]
