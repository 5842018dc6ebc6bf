"""Shared informers, streaming lists and the silent-connection watchdog on the real server."""

from __future__ import annotations

import socket
import threading
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import attrs
import pytest

from kubesync import Api, Client, Patch
from kubesync.core.lazy import Packed, encode
from kubesync.models.core_v1 import ConfigMap
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.controller import Controller
from kubesync.runtime.reflector import start_reflector
from kubesync.runtime.store import private_copy
from kubesync.runtime.watcher import InitialList, WatcherConfig
from tests.helpers import eventually, server_minor

pytestmark = pytest.mark.e2e

class Requests:
    """Every LIST and WATCH of ConfigMaps one Client sends, counted at its transport (where
    every request of the Client goes out, watches included). The API server's own metrics
    count the whole cluster's requests, and the namespace controller LISTs every resource
    of a namespace it is deleting, so they were exact only on an idle cluster."""

    def __init__(self, client: Client) -> None:
        self.calls: List[Tuple[str, bool]] = []
        transport = client._transport
        original = transport.send

        def send(method: str, url: str, **kw: Any) -> Any:
            params = dict(kw.get("params") or ())
            if method == "GET" and urlsplit(url).path.endswith("/configmaps"):
                self.calls.append(("WATCH" if params.get("watch") in ("1", "true")
                                   else "LIST", "sendInitialEvents" in params))
            return original(method, url, **kw)

        transport.send = send  # type: ignore[method-assign]

    def count(self, verb: str) -> int:
        return sum(1 for v, _ in self.calls if v == verb)


@pytest.mark.parametrize("strategy", [InitialList.LIST, InitialList.AUTO])
def test_three_controllers_and_two_reflectors_on_one_kind_make_one_list_and_one_watch(
        kube_client: Client, kube_namespace: str, strategy: str) -> None:
    streaming = strategy == InitialList.AUTO and server_minor(kube_client) >= (1, 32)
    client = Client(kube_client.config)  # its own informers, nobody else's
    counted = Requests(client)
    api = Api(client, ConfigMap, kube_namespace)
    api.create(ConfigMap(metadata=ObjectMeta(name="seed"), data={"v": "0"}))
    config = WatcherConfig(initial_list=strategy)
    lists, watches = counted.count("LIST"), counted.count("WATCH")
    seen: List[Dict[str, int]] = [{} for _ in range(3)]
    controllers = [
        Controller(api, config=config).start(
            lambda o, ctx, i=i: seen[i].__setitem__(o.metadata.name, 1))  # type: ignore[misc]
        for i in range(3)
    ]
    stores = [start_reflector(api, config) for _ in range(2)]
    try:
        for store in stores:
            assert store.wait_until_ready(60)
        api.create(ConfigMap(metadata=ObjectMeta(name="later"), data={"v": "1"}))
        eventually(lambda: all({"seed", "later"} <= set(s) for s in seen), timeout=30,
                   what="every controller reconciled both")
        eventually(lambda: all(s.get("later", kube_namespace) is not None for s in stores),
                   timeout=30, what="both reflectors saw the change")
        assert stores[0] is stores[1] is controllers[0].store  # one cache
    finally:
        for c in controllers:
            c.stop()
        for s in stores:
            s.stop()
        client.close()
    assert counted.count("LIST") - lists == (0 if streaming else 1)
    assert counted.count("WATCH") - watches == 1


@pytest.mark.kube_min_version("1.32")  # streaming lists are on by default from 1.32
def test_a_streaming_initial_list_fills_the_store_without_a_list(
        kube_client: Client, kube_namespace: str) -> None:
    client = Client(kube_client.config)
    counted = Requests(client)
    api = Api(client, ConfigMap, kube_namespace)
    for i in range(30):
        api.create(ConfigMap(metadata=ObjectMeta(name=f"cm-{i}"), data={"v": str(i)}))
    store = start_reflector(api, WatcherConfig(initial_list=InitialList.STREAMING),
                            shared=False)
    try:
        assert store.wait_until_ready(60)
        want = {o.metadata.name for o in api.list_all()}
        assert {o.metadata.name for o in store.list()} == want
        assert store.last_error is None
    finally:
        store.stop()
        client.close()
    # One streaming WATCH filled the store; the one LIST is our own list_all() above.
    assert counted.calls[0] == ("WATCH", True)
    assert counted.count("LIST") == 1


def _without_type(body: Dict[str, Any]) -> Dict[str, Any]:
    # The items of a LIST come without kind and apiVersion (a store filled by LIST, on
    # servers before streaming lists); a GET and a watch event have them.
    return {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}


def test_a_store_gives_back_every_field_the_server_sent_and_shares_repeated_strings(
        kube_client: Client, kube_namespace: str) -> None:
    # Stores keep managedFields packed (JSON bytes until read) and intern the strings
    # objects repeat: reads, encode and a replace from a private copy must see exactly
    # what a GET of the object sees.
    api = Api(kube_client, ConfigMap, kube_namespace)
    for i in range(5):
        labels = {"n": str(i), "team": "e2e-shared-team"}
        api.apply(ConfigMap(metadata=ObjectMeta(name=f"packed-{i}", labels=labels),
                            data={"v": str(i)}), field_manager="e2e-packer")
    api.patch("packed-0", Patch.merge({"data": {"w": "by merge"}}))  # a second manager
    store = start_reflector(api, shared=False)
    try:
        assert store.wait_until_ready(60)
        for i in range(5):
            cached, served = store.get(f"packed-{i}", kube_namespace), api.get(f"packed-{i}")
            assert cached is not None and cached.metadata._kube_raw is not None
            assert isinstance(cached.metadata._kube_raw["managedFields"], Packed)
            assert _without_type(encode(cached)) == _without_type(encode(served))
            assert cached.metadata.managed_fields == served.metadata.managed_fields
        cached_all = [o for o in store.list() if str(o.metadata.name).startswith("packed-")]
        assert len(cached_all) == 5
        # One copy of each repeated string for the whole store, not one per object.
        assert len({id(o.metadata.namespace) for o in cached_all}) == 1
        assert len({id((o.metadata.labels or {})["team"]) for o in cached_all}) == 1
        first, second = (store.get(f"packed-{i}", kube_namespace) for i in (0, 1))
        assert first is not None and second is not None
        assert {"e2e-packer"} < {e.manager for e in first.metadata.managed_fields or ()}
        mine = private_copy(second)
        mine.data = {"v": "replaced"}
        assert api.replace("packed-1", mine).data == {"v": "replaced"}
    finally:
        store.stop()


def test_auto_falls_back_to_list_and_watch_on_servers_without_streaming_lists(
        kube_client: Client, kube_namespace: str) -> None:
    # On 1.20 (no WatchList) "auto" lists; on 1.37 it streams: both fill the store.
    api = Api(kube_client, ConfigMap, kube_namespace)
    api.create(ConfigMap(metadata=ObjectMeta(name="one"), data={"v": "1"}))
    store = start_reflector(api, shared=False)
    try:
        assert store.wait_until_ready(60)
        api.create(ConfigMap(metadata=ObjectMeta(name="two"), data={"v": "2"}))
        eventually(lambda: {"one", "two"} <= {o.metadata.name for o in store.list()},
                   timeout=30, what="the store to follow")
        assert store.last_error is None
    finally:
        store.stop()


# -- a proxy that goes silent -----------------------------------------------------------


class SilentProxy:
    """A TCP proxy in front of the API server (TLS passes through). ``silence()`` makes
    every connection open now stop forwarding, without closing it: a half-open path, as
    a load balancer that lost its state leaves. New connections are forwarded."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: List[Dict[str, Any]] = []
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self.accepted = 0
        self._spawn(self._accept, "test-proxy-accept")

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(self._target)
            conn = {"silent": False, "socks": (down, up)}
            with self._lock:
                self._conns.append(conn)
                self.accepted += 1
            self._spawn(self._pump, "test-proxy-up", down, up, conn)
            self._spawn(self._pump, "test-proxy-down", up, down, conn)

    def _pump(self, src: socket.socket, dst: socket.socket, conn: Dict[str, Any]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not conn["silent"]:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in conn["socks"]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def silence(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn["silent"] = True

    def close(self) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            for s in conn["socks"]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        for t in self._threads:
            t.join(10)
            assert not t.is_alive(), t.name


@pytest.fixture
def proxy(kube_client: Client) -> Iterator[SilentProxy]:
    url = urlsplit(kube_client.config.server)
    p = SilentProxy(url.hostname or "127.0.0.1", url.port or 443)
    try:
        yield p
    finally:
        p.close()


IDLE = 3.0  # the watcher's idle timeout in this test (the default is 120 s)


def test_a_watch_through_a_silent_proxy_reconnects_and_sees_later_changes(
        kube_client: Client, kube_namespace: str, proxy: SilentProxy) -> None:
    config = kube_client.config
    host = urlsplit(config.server).hostname
    proxied = Client(attrs.evolve(config, server=f"https://127.0.0.1:{proxy.port}",
                                  tls_server_name=config.tls_server_name or (
                                      None if host in ("127.0.0.1", "::1") else host)))
    api = Api(proxied, ConfigMap, kube_namespace)
    direct = Api(kube_client, ConfigMap, kube_namespace)
    errors: List[BaseException] = []
    # Bookmarks come about once a minute: a 3 s idle timeout reconnects a healthy but
    # quiet watch too, which only costs a request; the point here is the dead one.
    store = start_reflector(api, WatcherConfig(idle_timeout=IDLE), shared=False,
                            on_error=errors.append)
    try:
        assert store.wait_until_ready(60)
        before = proxy.accepted
        proxy.silence()
        direct.create(ConfigMap(metadata=ObjectMeta(name="after-silence"), data={"v": "1"}))
        # Bound: the idle timeout, the first backoff (<= 0.8 s) and a new connection.
        eventually(lambda: store.get("after-silence", kube_namespace) is not None,
                   timeout=IDLE + 0.8 + 10, what="the change made after the silence")
        assert proxy.accepted > before  # through a new connection: the old one is mute
        assert any("timed out" in str(e).lower() or "timeout" in type(e).__name__.lower()
                   for e in errors), errors
    finally:
        store.stop()
        proxied.close()
