"""Everything that runs in the background: watcher, reflector and store, controller.

The data path, left to right: ``watcher(api)`` lists and watches in a thread and yields
events; a ``StoreWriter`` (via ``reflector``/``start_reflector``) keeps a ``Store``; the
``Controller`` feeds a ``WorkQueue`` from watchers and reconciles with a worker pool.
"""

from kubesync.core.backoff import ExponentialBackoff
from kubesync.runtime.controller import Action, Controller, ObjectRef, default_error_policy
from kubesync.runtime.finalizer import finalizer
from kubesync.runtime.leader import LeaderElector
from kubesync.runtime.queue import QueueShutDown, WorkQueue
from kubesync.runtime.recorder import Recorder
from kubesync.runtime.reflector import drop_managed_fields, reflector, start_reflector
from kubesync.runtime.store import Store, StoreWriter, private_copy
from kubesync.runtime.wait import (
    WaitTimeout,
    await_condition,
    is_crd_established,
    is_deleted,
    is_deployment_rolled_out,
    is_job_completed,
    is_pod_running,
)
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    Event,
    Init,
    InitApply,
    InitDone,
    Watcher,
    WatcherConfig,
    applied_objects,
    predicate_filter,
    watcher,
)

__all__ = [
    "Action",
    "Apply",
    "Controller",
    "Delete",
    "Event",
    "ExponentialBackoff",
    "Init",
    "InitApply",
    "InitDone",
    "LeaderElector",
    "ObjectRef",
    "QueueShutDown",
    "Recorder",
    "Store",
    "StoreWriter",
    "WaitTimeout",
    "Watcher",
    "WatcherConfig",
    "WorkQueue",
    "applied_objects",
    "await_condition",
    "default_error_policy",
    "drop_managed_fields",
    "finalizer",
    "is_crd_established",
    "is_deleted",
    "is_deployment_rolled_out",
    "is_job_completed",
    "is_pod_running",
    "predicate_filter",
    "private_copy",
    "reflector",
    "start_reflector",
    "watcher",
]
