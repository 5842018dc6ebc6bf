"""Create, list and delete a ConfigMap: the smallest kubesync script.

Run against any cluster KUBECONFIG points at, or a throwaway local one:
    python -m kubesync.testing python examples/configmaps.py
"""

from __future__ import annotations

from kubesync import Api, Client
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta


def main() -> None:
    with Client.from_config() as client:
        cms = Api.default_namespaced(client, ConfigMap)
        created = cms.create(
            ConfigMap(metadata=ObjectMeta(name="kubesync-hello"), data={"greeting": "hello"})
        )
        print(f"created {created.metadata.namespace}/{created.metadata.name} "
              f"(uid {created.metadata.uid})")
        for cm in cms.list().items:
            print(f"  {cm.metadata.name}: {sorted((cm.data or {}).keys())}")
        cms.delete("kubesync-hello")
        print("deleted kubesync-hello; still there:", cms.get_opt("kubesync-hello") is not None)


if __name__ == "__main__":
    main()
