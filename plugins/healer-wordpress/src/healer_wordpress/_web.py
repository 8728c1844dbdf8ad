"""HTTP requests to a site from its own host: curl (else PHP) run through the host, connected
to the host itself with the site's name, so a check tests this server and never leaves it."""

from __future__ import annotations

import ipaddress
import urllib.parse

import attrs

from universal_healer.hosts.base import Host
from universal_healer.model import Application

__all__ = ["LOCAL_ADDRESS", "HttpAnswer", "http_address", "http_get"]


@attrs.frozen(kw_only=True)
class HttpAnswer:
    """How one HTTP GET went: the status (None when no answer came) and the time taken."""

    status: int | None
    seconds: float | None = None
    error: str | None = None


_PHP_GET = r"""
[, $url, $timeout, $name] = $argv;
$context = stream_context_create([
    'http' => [
        'timeout' => (float) $timeout, 'ignore_errors' => true, 'follow_location' => 0,
        'header' => $name !== '' ? "Host: $name" : '',
    ],
    'ssl' => $name !== '' ? ['peer_name' => $name] : [],
]);
$started = microtime(true);
$body = @file_get_contents($url, false, $context, 0, 1);
if (!isset($http_response_header[0])) {
    fwrite(STDERR, error_get_last()['message'] ?? 'no answer');
    exit(7);
}
preg_match('{^HTTP/\S+\s+(\d{3})}', $http_response_header[0], $m);
printf("%s %.3f", $m[1] ?? '000', microtime(true) - $started);
"""

LOCAL_ADDRESS = "127.0.0.1"
"""Where :func:`http_get` connects by default: the site's own host, whatever DNS says."""


def http_address(app: Application) -> str | None:
    """Where to send the site's requests: the application's ``http_address`` metadata (an IP
    address, or ``"dns"`` to follow DNS), by default the host itself (127.0.0.1)."""
    configured = app.metadata.get("http_address")
    if configured == "dns":
        return None
    return configured if isinstance(configured, str) and configured else LOCAL_ADDRESS


def _answer(stdout: str) -> tuple[int | None, float | None]:
    parts = stdout.split()
    status = int(parts[0]) if parts and parts[0].isdigit() and parts[0] != "000" else None
    try:
        seconds = float(parts[1]) if len(parts) > 1 else None
    except ValueError:
        seconds = None
    return status, seconds


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@attrs.frozen(kw_only=True)
class _Pinned:
    """A URL whose host name is sent as such but connected to at a fixed address."""

    name: str
    port: int
    address: str
    url: str  # the URL with the address in place of the name (for PHP)


def _pinned(url: str, address: str | None) -> _Pinned | None:
    parts = urllib.parse.urlsplit(url)
    name = parts.hostname
    if not address or name is None or _is_address(name):
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    return _Pinned(
        name=name,
        port=port,
        address=address,
        url=urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
    )


async def http_get(
    host: Host, url: str, *, timeout: float = 10.0, address: str | None = LOCAL_ADDRESS
) -> HttpAnswer:
    """GET ``url`` from the host (curl, else PHP), not following redirects.

    :param address: connect here instead of where DNS points (the name is still sent, for the
        virtual host and TLS): by default the host itself, so the request tests this server
        and never leaves the machine. None: use DNS.
    """
    pin = _pinned(url, address)
    resolve: tuple[str, ...] = ()
    if pin is not None:
        target = f"[{pin.address}]" if ":" in pin.address else pin.address
        resolve = ("--resolve", f"{pin.name}:{pin.port}:{target}")
    argv = (
        "curl", "--silent", "--show-error", "--output", "/dev/null", "--max-time", f"{timeout:g}",
        "--proto", "=http,https", "--write-out", "%{http_code} %{time_total}", *resolve,
        "--url", url,
    )  # fmt: skip
    result = await host.run(argv, timeout=timeout + 5)
    if result.exit_status == 127 and not result.stdout:
        php_url, name = (pin.url, pin.name) if pin is not None else (url, "")
        result = await host.run(
            ("php", "-r", _PHP_GET, "--", php_url, f"{timeout:g}", name), timeout=timeout + 5
        )
    status, seconds = _answer(result.text)
    if status is None:
        said = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return HttpAnswer(status=None, error=(said[-1] if said else "no answer")[:200])
    return HttpAnswer(status=status, seconds=seconds)
