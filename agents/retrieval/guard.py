"""The address guard: resolve each host as its connection opens and refuse non-public addresses.

It connects to the address it checked, so DNS cannot change its answer in between. Private,
loopback, link-local and reserved addresses are refused; tests opt in to 127.0.0.1 with
`FetchPolicy(allow_loopback=True)`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpcore
import httpx

from agents.retrieval.policy import FetchPolicy, Refused


def forbidden_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    """"private", "loopback", "link-local" or "reserved" when the guard refuses `ip`; else None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_link_local:
        return "link-local"  # 169.254.169.254 is the cloud metadata service
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "reserved"
    return None


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network layer with the guard in front of every TCP connect."""

    def __init__(self, allow_loopback: bool):
        self.allow_loopback = allow_loopback
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = await resolve(host, port, timeout)
        for ip in addresses:  # one bad answer refuses the host: the attacker may control the order
            if kind := forbidden_kind(ip, self.allow_loopback):
                raise Refused(f"{kind} address {ip}")
        for ip in addresses[:-1]:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return await self._inner.connect_tcp(str(addresses[-1]), port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise Refused("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def resolve(host: str, port: int, timeout: float | None) -> list:
    """The host's addresses, each once; a literal IP needs no lookup."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except (OSError, asyncio.TimeoutError):
        raise Refused(f"cannot resolve host {host}") from None
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def guarded_transport(policy: FetchPolicy) -> httpx.AsyncHTTPTransport:
    """httpx's own transport with the guarded network layer. httpx 0.28 has no public parameter for
    it (encode/httpx PR 3749 adds one), so the connection pool is rebuilt as httpx builds it."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False), max_connections=policy.concurrency,
        max_keepalive_connections=policy.concurrency, keepalive_expiry=5.0,
        network_backend=GuardedBackend(policy.allow_loopback))
    return transport
