"""What keeps a web browser from being used against the API (applied to every route by GuardMiddleware).

A page on another site can make the browser of someone who can reach the API send requests to it,
with that browser's Basic login attached. Two attacks, and what stops each (docs/security.md):

* **Cross-site request forgery.** A form or a ``fetch(..., {mode: "no-cors"})`` can POST without a
  CORS preflight only with a "simple" content type (``text/plain``, form encodings, or none). So
  every state-changing request (any method but GET, HEAD, OPTIONS) must carry ``Content-Type:
  application/json`` (``*/*+json`` too) or the header ``X-Orchestrator-Client`` (any value; the
  dashboard sends ``X-Orchestrator-Dashboard``): both need a preflight, which this server never
  grants (it sends no CORS headers). A request whose ``Origin`` is another site is refused as well.
  This holds whether or not a token is set.
* **DNS rebinding.** A page of ``evil.example`` whose name is made to resolve to 127.0.0.1 talks to
  a loopback-bound API as "same origin". Bound to loopback, the API therefore answers only requests
  whose ``Host`` names loopback (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``[::1]``), or a
  name listed in the setting ``api_allowed_hosts`` (a reverse proxy's).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .server import is_loopback

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLIENT_HEADERS = ("x-orchestrator-client", "x-orchestrator-dashboard")


def split_host(host: str) -> tuple[str, str]:
    """(host name, port) of a ``Host`` header value (``[::1]:8080`` -> ``::1``, ``8080``)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


def allowed_hosts(setting: str) -> frozenset[str]:
    """The host names of ``api_allowed_hosts`` (comma-separated)."""
    return frozenset(h.strip().lower() for h in setting.split(",") if h.strip())


def host_refusal(host_header: str | None, extra: frozenset[str]) -> str | None:
    """Why a loopback-bound API must not answer this ``Host``, or None."""
    name, _ = split_host(host_header or "")
    if name == "localhost" or name.endswith(".localhost") or is_loopback(name) or name in extra:
        return None
    shown = (host_header or "")[:100]
    return (f"Host {shown!r} is not this server: bound to loopback, it answers requests for localhost, "
            "127.0.0.1 or [::1] only (which keeps out pages whose DNS name was rebound to this machine); "
            "add a reverse proxy's name to the setting api_allowed_hosts")


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def forgery_refusal(method: str, headers: dict[str, str]) -> tuple[int, str] | None:
    """(status, message) when a state-changing request could have been forged by another site."""
    if method.upper() in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if split_host(parts.netloc) != split_host(headers.get("host", "")):
            return 403, (f"cross-origin request from {origin[:100]!r} refused: this API does not serve other "
                         "sites' pages (it sends no CORS headers; see docs/security.md)")
    if is_json(headers.get("content-type")) or any(h in headers for h in CLIENT_HEADERS):
        return None
    return 415, (f"a {method.upper()} request must send 'Content-Type: application/json' (or the header "
                 "'X-Orchestrator-Client'), so that no web page of another site can forge it; got "
                 f"Content-Type {headers.get('content-type', '(none)')[:100]!r}")


__all__ = ["CLIENT_HEADERS", "SAFE_METHODS", "allowed_hosts", "forgery_refusal", "host_refusal", "is_json",
           "split_host"]
