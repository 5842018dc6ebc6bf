"""The classic controller: a ConfigMapGenerator's ``content`` becomes an owned ConfigMap.

For each ConfigMapGenerator the controller server-side applies a ConfigMap of the same
name (owned by the generator, so the garbage collector deletes it with its owner),
records the generation it saw in the generator's status and publishes an Event.

    python examples/configmapgen_controller.py          # run until Ctrl-C / SIGTERM
    python examples/configmapgen_controller.py --demo   # create, change and delete one
    python -m kubesync.testing python examples/configmapgen_controller.py --demo
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any, Callable, List, Optional

import attrs

from kubesync import Api, Client, Patch
from kubesync.crd import CustomResource, Model, PrinterColumn, field, install
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta, OwnerReference
from kubesync.runtime import Action, Controller, Recorder, await_condition, conditions

log = logging.getLogger("configmapgen")
MANAGER = "configmapgen-controller"


@attrs.define
class ConfigMapGeneratorSpec(Model):
    """What the generated ConfigMap holds."""

    content: str = field(description="the value of the ConfigMap's 'content' key")


@attrs.define
class ConfigMapGeneratorStatus(Model):
    """What the controller last did."""

    observed_generation: Optional[int] = None
    config_map: Optional[str] = None


class ConfigMapGenerator(
    CustomResource[ConfigMapGeneratorSpec, ConfigMapGeneratorStatus],
    group="examples.kubesync.dev",
    version="v1",
    shortnames=("cmg",),
    printer_columns=[PrinterColumn("ConfigMap", "string", ".status.configMap")],
):
    """Generates a ConfigMap from its spec."""


@attrs.frozen
class Context:
    client: Client
    recorder: Recorder


def reconcile(gen: ConfigMapGenerator, ctx: Context) -> Action:
    """Make the generator's ConfigMap match its spec; note it in status and an Event."""
    meta = gen.metadata
    assert meta is not None and meta.name and meta.namespace and gen.spec is not None
    owner = OwnerReference(
        api_version=ConfigMapGenerator.api_resource.api_version,
        kind=ConfigMapGenerator.api_resource.kind,
        name=meta.name, uid=str(meta.uid), controller=True, block_owner_deletion=True,
    )
    cm = ConfigMap(
        metadata=ObjectMeta(name=meta.name, namespace=meta.namespace,
                            owner_references=[owner]),
        data={"content": gen.spec.content},
    )
    Api(ctx.client, ConfigMap, namespace=meta.namespace).apply(
        cm, field_manager=MANAGER, force=True)
    status = gen.status
    if status is None or status.observed_generation != meta.generation:
        Api(ctx.client, ConfigMapGenerator, namespace=meta.namespace).patch_status(
            meta.name, Patch.merge({"status": {"observedGeneration": meta.generation,
                                               "configMap": meta.name}}))
        ctx.recorder.publish(gen, reason="Generated", action="ApplyConfigMap",
                             note=f"ConfigMap {meta.name} at generation {meta.generation}")
    log.info("reconciled %s/%s (generation %s)", meta.namespace, meta.name, meta.generation)
    return Action.requeue(300)  # a periodic check, in case someone edits the ConfigMap


def error_policy(gen: ConfigMapGenerator, error: BaseException, ctx: Context) -> Action:
    log.warning("reconcile failed: %s", error)
    return Action.retry_with_backoff()


def controller(client: Client) -> Controller[ConfigMapGenerator]:
    """Generators everywhere; a change to an owned ConfigMap reconciles its generator.
    Status-only changes (same generation) do not."""
    return Controller(
        Api.all(client, ConfigMapGenerator),
        predicate=lambda g: g.metadata.generation if g.metadata else None,
    ).owns(Api.all(client, ConfigMap))


def demo(client: Client, say: Callable[[str], None] = print) -> None:
    """Create a generator, change it, delete it; show the ConfigMap follow."""
    gens = Api.default_namespaced(client, ConfigMapGenerator)
    cms = Api.default_namespaced(client, ConfigMap)

    def content_is(text: str) -> Callable[[Any], bool]:
        return lambda cm: cm is not None and (cm.data or {}).get("content") == text

    gens.create(ConfigMapGenerator.new("demo", ConfigMapGeneratorSpec(content="hello")))
    say("created ConfigMapGenerator demo with content 'hello'")
    await_condition(cms, "demo", content_is("hello"), timeout=60)
    say("ConfigMap demo has content 'hello'")
    gens.patch("demo", Patch.merge({"spec": {"content": "hello again"}}))
    await_condition(cms, "demo", content_is("hello again"), timeout=60)
    say("changed the generator: ConfigMap demo has content 'hello again'")
    await_condition(gens, "demo", lambda g: g is not None and g.status is not None
                    and g.status.config_map == "demo", timeout=60)
    say("the generator's status names ConfigMap demo")
    cm_uid = cms.get("demo").metadata.uid
    gens.delete("demo")
    await_condition(cms, "demo", conditions.is_deleted(str(cm_uid)), timeout=120)
    say("deleted the generator: ConfigMap demo was garbage-collected")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true",
                        help="run the controller in the background and show it working")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with Client.from_config() as client:
        install(client, ConfigMapGenerator)  # the CRD; waits until it is served
        ctx = Context(client, Recorder(client, MANAGER))
        ctl = controller(client)
        if not args.demo:
            print("controller running; Ctrl-C or SIGTERM stops it", flush=True)
            ctl.run(reconcile, error_policy, ctx, workers=args.workers)
            print("controller stopped", flush=True)
            return 0
        ctl.start(reconcile, error_policy, ctx, workers=args.workers)
        try:
            demo(client, lambda s: print(s, flush=True))
        finally:
            ctl.stop()
        leftover = [t.name for t in threading.enumerate() if t.name.startswith("kubesync-")]
        print(f"controller stopped; kubesync threads left: {leftover}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
