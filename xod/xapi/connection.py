"""One long-lived XAPI session per pool: login, re-login on SESSION_INVALID, following the
master (HOST_IS_SLAVE), failover over the pool's known hosts when the master stops answering,
calls (each request in its host's dialect: xod/xapi/rpc.py), Async calls and event.from.

Failover follows the algorithm of XenServer's SDK guide: keep the pool's host list current;
when the master does not answer, try every host until one answers; a slave answers
HOST_IS_SLAVE naming the new master; connect there."""

# A `timeout` argument here is a per-request deadline handed down to the HTTP layer (the
# module contract), not a replacement for asyncio.timeout.

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Literal

import aiohttp
from yarl import URL

from xod.backoff import Backoff
from xod.xapi.codec import decode_event_batch, decode_jsonrpc_response
from xod.xapi.errors import ProtocolError, TlsError, TransportError, XapiError
from xod.xapi.rpc import Dialect, JsonDecoder, Rpc, is_idempotent
from xod.xapi.tasks import ProgressCallback, TaskWatcher, task_outcome
from xod.xapi.transport import Transport

log = logging.getLogger("xod.xapi")

Status = Literal["disconnected", "connecting", "connected"]

# event.from's HTTP timeout = 1.1 × its XAPI timeout + this (seconds): the server answers at
# its own timeout at the latest, so a longer silence means the host is gone.
EVENT_FROM_MARGIN = 2.0
# HOST_IS_SLAVE hops followed for one login (a master move during failover can add one).
_MAX_REDIRECTS = 3
# Messages that take no session parameter.
_SESSIONLESS_METHODS = frozenset({"system.listMethods"})


def with_host(url: URL, address: str) -> URL:
    """`url` pointed at another host of the pool: scheme and port kept (yarl brackets IPv6)."""
    return url.with_host(address.strip("[]"))


class PoolConnection:
    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        allow_unauthorized: bool = False,
        fingerprint: str | None = None,
        unix_socket: str | None = None,
        call_timeout: float = 30.0,
        originator: str = "xod",
        protocol: Dialect = "auto",
        probe_timeout: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        task_event_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        http_proxy: str | None = None,
    ) -> None:
        self._url = URL(url).with_path("/").with_query(None).with_fragment(None)
        self._username = username
        self._password = password
        self._originator = originator
        self._call_timeout = call_timeout
        # Probing hosts during failover must not take a full call timeout per silent host.
        self._probe_timeout = min(probe_timeout, call_timeout)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._unix_socket = unix_socket
        self._wire = Rpc(
            Transport(
                allow_unauthorized=allow_unauthorized,
                fingerprint=fingerprint,
                unix_socket=unix_socket,
                ssl_context=ssl_context,
                http_proxy=http_proxy,
            ),
            protocol,
            unix_socket,
        )
        self.status: Status = "disconnected"
        self.last_error: str | None = None
        self.pool_ref: str | None = None
        self.session_ref: str | None = None
        self.on_status: list[Callable[[PoolConnection], None]] = []
        self._known_hosts: list[str] = []
        # Bumped on every new session or master: a caller whose call failed under an older
        # generation just retries, instead of renewing the session a second time.
        self._generation = 0
        self._renewal: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._tasks = TaskWatcher(self, event_timeout=task_event_timeout)

    # ------------------------------------------------------------------------------ state

    @property
    def closed(self) -> bool:
        """Closed by its owner (the server was removed or disabled): calls fail at once."""
        return self._closed

    @property
    def master_url(self) -> str:
        return str(self._url).rstrip("/")

    @property
    def known_hosts(self) -> list[str]:
        return list(self._known_hosts)

    @property
    def transport(self) -> Transport:
        """The pool's HTTP transport, also for XAPI's HTTP handlers (xod/xapi/http.py)."""
        return self._wire.transport

    def host_url(self, address: str | None = None) -> URL:
        """The URL of one of the pool's hosts by address (the master's when None), with the
        master's scheme and port."""
        return self._url if address is None else with_host(self._url, address)

    def protocol_of(self, url: str | None = None) -> str | None:
        """The RPC dialect remembered for a host (the master by default), once it answered."""
        return self._wire.dialect_of(URL(url) if url else self._url)

    def transfer_client(self) -> aiohttp.ClientSession:
        """An HTTP session for one transfer to the master's handlers (xod/xapi/transfers.py)."""
        return self._wire.transfer_client()

    def set_known_hosts(self, addresses: Iterable[str]) -> None:
        """The pool's hosts (host.address values): the candidates tried when the master fails."""
        self._known_hosts = list(dict.fromkeys(a for a in addresses if a))

    def _set_status(self, status: Status, error: BaseException | None = None) -> None:
        last_error = self.last_error
        if error is not None:
            last_error = str(error) or type(error).__name__
        elif status == "connected":
            last_error = None
        if status == self.status and last_error == self.last_error:
            return
        self.status, self.last_error = status, last_error
        log.info(
            "pool connection %s: %s%s", self.master_url, status, f" ({last_error})" * bool(error)
        )
        for callback in list(self.on_status):
            try:
                callback(self)
            except Exception:
                log.exception("on_status callback failed")

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ------------------------------------------------------------------------------ sessions

    async def _login_at(self, url: URL, timeout: float) -> tuple[URL, str]:
        """Log in at `url`, following HOST_IS_SLAVE to the master it names."""
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                session = await self._wire.call(
                    url,
                    "session.login_with_password",
                    [self._username, self._password, "1.0", self._originator],
                    timeout,
                )
                return url, session
            except XapiError as error:
                if error.code != "HOST_IS_SLAVE" or not error.params or self._unix_socket:
                    raise
                log.info("%s is a slave; master is %s", url.host, error.params[0])
                url = with_host(url, error.params[0])
        raise TransportError("too many HOST_IS_SLAVE redirections", url=str(url.origin()))

    def _candidates(self) -> list[URL]:
        if self._unix_socket:
            return [self._url]
        urls = {str(self._url): self._url}
        for address in self._known_hosts:
            candidate = with_host(self._url, address)
            urls.setdefault(str(candidate), candidate)
        return list(urls.values())

    async def _establish(self, first: URL | None = None) -> None:
        """Log in at `first` (if given), then the current master, then every known host, until
        one accepts (directly or by naming the master)."""
        candidates = self._candidates()
        if first is not None:
            candidates.insert(0, first)
        failure: TransportError | None = None
        for candidate in candidates:
            try:
                url, session = await self._login_at(candidate, self._probe_timeout)
            except TransportError as error:
                failure = failure or error
                log.info("pool host %s does not answer: %s", candidate.host, error)
                continue
            await self._adopt(url, session)
            return
        # Keep the first failure's kind (a TLS rejection is not a dead host).
        kind = type(failure) if failure is not None else TransportError
        raise kind(
            f"no host of the pool answers ({len(candidates)} tried): {failure}",
            url=self.master_url,
        )

    async def _adopt(self, url: URL, session: str) -> None:
        previous = self.session_ref
        self._url = url
        self.session_ref = session
        self._generation += 1
        if not self._unix_socket:
            await self._learn_pool(url, session)
        self._set_status("connected")
        if previous is not None and previous != session:
            # The old session may still live in the pool DB: free it (the pool caps sessions
            # per originator), without delaying anyone.
            self._spawn(self._logout_quietly(url, previous))

    async def _learn_pool(self, url: URL, session: str) -> None:
        """Pool ref and the hosts' addresses, so failover works even before anyone calls
        set_known_hosts(). Best effort: a failure here does not undo the login."""
        try:
            pools = await self._wire.call(url, "pool.get_all", [session], self._call_timeout)
            self.pool_ref = pools[0] if pools else None
            hosts = await self._wire.call(
                url, "host.get_all_records", [session], self._call_timeout
            )
            addresses = [record.get("address", "") for record in hosts.values()]
            self.set_known_hosts([*addresses, *self._known_hosts])
        except (TransportError, XapiError) as error:
            log.warning("could not read the pool's hosts from %s: %s", url.host, error)

    async def _logout_quietly(self, url: URL, session: str) -> None:
        with contextlib.suppress(TransportError, XapiError):
            await self._wire.call(url, "session.logout", [session], self._probe_timeout)

    async def _renew(self, *, probe: bool, first: URL | None, error: BaseException | None) -> None:
        self._set_status("connecting", error)
        try:
            if probe and self.session_ref is not None:
                # A transport failure may be a blip: if the master still answers with our
                # session, keep it (no new login, no failover).
                try:
                    await self._wire.call(
                        self._url, "pool.get_all", [self.session_ref], self._probe_timeout
                    )
                except (TransportError, XapiError):
                    pass
                else:
                    self._generation += 1
                    self._set_status("connected")
                    return
            await self._establish(first)
        except BaseException as failure:
            if isinstance(failure, Exception):
                self._set_status("disconnected", failure)
            else:
                self._set_status("disconnected")
            raise

    async def _renewed(
        self,
        generation: int,
        *,
        probe: bool = False,
        first: URL | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Make sure the session is newer than `generation`: one renewal at a time, shared by
        every caller that hit the same failure; a cancelled caller does not abort it."""
        if self._generation != generation and self.status == "connected":
            return
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.create_task(self._renew(probe=probe, first=first, error=error))
            # Nobody may be left to read a failure (all callers cancelled): read it here.
            self._renewal.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.shield(self._renewal)

    # ------------------------------------------------------------------------------ public

    async def connect(self, *, timeout: float | None = None) -> None:
        """Log in (following HOST_IS_SLAVE, failing over over known hosts); while nothing
        answers, retry with backoff and jitter — for at most `timeout` seconds if given.
        XAPI refusals (bad credentials…) are raised at once."""
        self._closed = False
        if self.status == "connected" and self.session_ref is not None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        while True:
            try:
                await self._renewed(self._generation)
                return
            except TlsError:
                raise  # a configuration problem: retrying would not change the certificate
            except TransportError:
                pause = backoff.next()
                if deadline is not None and time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)

    async def close(self) -> None:
        """Log out and release the HTTP connections."""
        self._closed = True
        await self._tasks.close()
        for task in list(self._background):
            task.cancel()
        if self._renewal is not None and not self._renewal.done():
            self._renewal.cancel()
        if self.session_ref is not None:
            await self._logout_quietly(self._url, self.session_ref)
            self.session_ref = None
        await self._wire.close()
        self._set_status("disconnected")

    async def call(
        self,
        method: str,
        *args: Any,
        timeout: float | None = None,
        result_type: Any = None,
    ) -> Any:
        """`method(session, *args)` on the pool master. SESSION_INVALID → log in again and retry
        once; HOST_IS_SLAVE → move to the master and retry; a transport failure → fail over
        and retry once, for read-only calls only (others raise TransportError: their outcome
        is unknown).

        `result_type` (a msgspec type, e.g. `dict[str, SomeRecordTypedDict]`) decodes a
        JSON-RPC result straight into that type, skipping the fields it does not list; an
        XML-RPC host still answers with plain values."""
        decode_json: JsonDecoder = decode_jsonrpc_response
        if result_type is not None:
            decode_json = partial(decode_jsonrpc_response, result_type=result_type)
        return await self._call(method, args, timeout, decode_json)

    async def _call(
        self, method: str, args: tuple[Any, ...], timeout: float | None, decode_json: JsonDecoder
    ) -> Any:
        if self._closed:
            raise TransportError("connection closed", method=method, sent=False)
        timeout = self._call_timeout if timeout is None else timeout
        if self._renewal is not None and not self._renewal.done():
            # Someone is already moving the session: wait instead of using the stale one.
            with contextlib.suppress(TransportError, XapiError):
                await asyncio.shield(self._renewal)
        if self.session_ref is None or self.status == "disconnected":
            await self._renewed_before_sending(self._generation)
        session_retried = failed_over = False
        redirects = 0
        while True:
            generation, session = self._generation, self.session_ref
            try:
                params = list(args) if method in _SESSIONLESS_METHODS else [session, *args]
                return await self._wire.call(self._url, method, params, timeout, decode_json)
            except ProtocolError:
                raise
            except TransportError as error:
                # Sent again on the next master only if that cannot make it run twice.
                if failed_over or (error.sent and not is_idempotent(method)):
                    # Not retried, but the next call must find a live master.
                    self._spawn(self._renew_quietly(generation, error))
                    raise
                failed_over = True
                await self._renewed_before_sending(generation, probe=True, error=error)
            except XapiError as error:
                if error.code == "SESSION_INVALID" and not session_retried:
                    session_retried = True
                    await self._renewed_before_sending(generation, error=error)
                elif error.code == "HOST_IS_SLAVE" and error.params and redirects < _MAX_REDIRECTS:
                    redirects += 1
                    master = with_host(self._url, error.params[0])
                    await self._renewed_before_sending(generation, first=master, error=error)
                else:
                    raise

    async def _renewed_before_sending(self, generation: int, **options: Any) -> None:
        """`_renewed` for a call whose own request is not written yet (or was refused, or is
        safe to repeat): a failure here did not run that call, whatever the login request
        that failed went through."""
        try:
            await self._renewed(generation, **options)
        except TransportError as error:
            raise error.unsent() from None

    async def _renew_quietly(self, generation: int, error: BaseException) -> None:
        with contextlib.suppress(TransportError, XapiError):
            await self._renewed(generation, probe=True, error=error)

    async def call_async(
        self,
        method: str,
        *args: Any,
        progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`Async.<method>`: start the task, wait for it to finish (reporting progress changes),
        destroy it, return its decoded result — or raise its XapiError / TaskCancelled.
        `timeout` bounds the wait for the task (default: no bound; every request still has
        its own timeout, and a dead pool fails the wait)."""
        task_ref = await self.call(f"Async.{method}", *args)
        try:
            record = await self._tasks.wait(task_ref, progress, timeout)
        finally:
            # Shielded: even a cancelled caller must not leave the task behind.
            await asyncio.shield(self._spawn(self._destroy_task(task_ref)))
        return task_outcome(task_ref, record)

    async def _destroy_task(self, task_ref: str) -> None:
        try:
            await self.call("task.destroy", task_ref)
        except (TransportError, XapiError) as error:
            log.warning("could not destroy task %s: %s", task_ref, error)

    async def event_from(
        self,
        classes: list[str],
        token: str,
        timeout: float,
        snapshot_types: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`event.from(classes, token, timeout)`: returns at the first events or after
        `timeout` seconds; the HTTP request waits 1.1 × that plus a margin.

        `snapshot_types` (lower-case class name → msgspec type) decodes each JSON-RPC event's
        snapshot with its class's type, skipping unlisted fields (see `call`'s result_type)."""
        decode_json: JsonDecoder = decode_jsonrpc_response
        if snapshot_types is not None:
            decode_json = partial(decode_event_batch, snapshot_types=snapshot_types)
        batch: dict[str, Any] = await self._call(
            "event.from",
            (classes, token, float(timeout)),
            timeout * 1.1 + EVENT_FROM_MARGIN,
            decode_json,
        )
        return batch
