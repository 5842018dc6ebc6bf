"""Everything that runs in the background: watcher, reflector and store, controller.

The data path, left to right: ``watch(api)`` lists and watches in a thread and yields
events; a ``StoreWriter`` (via ``reflect``/``start_reflector``) keeps a ``Store``; the
``Controller`` feeds a ``WorkQueue`` from watchers and reconciles with a worker pool.
Modules are named for the thing (``watcher``, ``reflector``, ``finalizer``), functions
for what they do (``watch``, ``reflect``, ``finalize``); ready-made conditions for
``await_condition`` are in ``conditions``.
"""

from typing import TYPE_CHECKING

from kubesync.core.backoff import ExponentialBackoff
from kubesync.core.deprecation import callable_module, deprecated_names
from kubesync.runtime import conditions
from kubesync.runtime import finalizer as _finalizer_module
from kubesync.runtime import reflector as _reflector_module
from kubesync.runtime import watcher as _watcher_module
from kubesync.runtime.conditions import Condition
from kubesync.runtime.controller import Action, Controller, ObjectRef, default_error_policy
from kubesync.runtime.finalizer import finalize
from kubesync.runtime.informer import (
    SharedInformer,
    SharedInformerFactory,
    Subscription,
    shared_informers,
)
from kubesync.runtime.leader import LeaderElector
from kubesync.runtime.queue import QueueShutDown, WorkQueue
from kubesync.runtime.reconcile import (
    Deadline,
    ReconcileTimeout,
    TerminalError,
    reconcile_deadline,
)
from kubesync.runtime.recorder import Recorder
from kubesync.runtime.reflector import drop_managed_fields, reflect, start_reflector
from kubesync.runtime.sharding import HashRing, Sharding
from kubesync.runtime.store import (
    Store,
    StoreStopped,
    StoreWriter,
    pack_managed_fields,
    private_copy,
    share_common_strings,
)
from kubesync.runtime.wait import WaitTimeout, await_condition
from kubesync.runtime.watcher import (
    Apply,
    Delete,
    Event,
    Init,
    InitApply,
    InitDone,
    InitialList,
    PredicateFilter,
    WatchEndedEarly,
    Watcher,
    WatcherConfig,
    applied_objects,
    predicate_filter,
    watch,
)

if TYPE_CHECKING:
    # Deprecated spellings, still valid for type checkers for one release.
    from kubesync.runtime.conditions import is_crd_established as is_crd_established
    from kubesync.runtime.conditions import is_deleted as is_deleted
    from kubesync.runtime.conditions import is_deployment_rolled_out as is_deployment_rolled_out
    from kubesync.runtime.conditions import is_job_completed as is_job_completed
    from kubesync.runtime.conditions import is_pod_running as is_pod_running

__all__ = [
    "Action",
    "Apply",
    "Condition",
    "Controller",
    "Deadline",
    "Delete",
    "Event",
    "ExponentialBackoff",
    "HashRing",
    "Init",
    "InitApply",
    "InitDone",
    "InitialList",
    "LeaderElector",
    "ObjectRef",
    "PredicateFilter",
    "QueueShutDown",
    "ReconcileTimeout",
    "Recorder",
    "Sharding",
    "SharedInformer",
    "SharedInformerFactory",
    "Store",
    "StoreStopped",
    "StoreWriter",
    "Subscription",
    "TerminalError",
    "WaitTimeout",
    "WatchEndedEarly",
    "Watcher",
    "WatcherConfig",
    "WorkQueue",
    "applied_objects",
    "await_condition",
    "conditions",
    "default_error_policy",
    "drop_managed_fields",
    "finalize",
    "pack_managed_fields",
    "predicate_filter",
    "private_copy",
    "reconcile_deadline",
    "reflect",
    "share_common_strings",
    "shared_informers",
    "start_reflector",
    "watch",
]

# ``kubesync.runtime.watcher`` (and reflector, finalizer) used to be the function, hiding
# the module: now the name is the module, which answers a call as the function did.
callable_module(_watcher_module.__name__, watch,
                {"watcher": ("kubesync.runtime.watch", watch)})
callable_module(_reflector_module.__name__, reflect,
                {"reflector": ("kubesync.runtime.reflect", reflect)})
callable_module(_finalizer_module.__name__, finalize,
                {"finalizer": ("kubesync.runtime.finalize", finalize)})

__getattr__ = deprecated_names(__name__, {
    name: (f"kubesync.runtime.conditions.{name}", getattr(conditions, name))
    for name in ("is_crd_established", "is_deleted", "is_deployment_rolled_out",
                 "is_job_completed", "is_pod_running")
})
