"""HTTP probe: web PACS, DICOMweb, image viewers and open directory listings.

One endpoint, a handful of GETs, nothing written:

1. scheme: HTTPS first on the usual TLS ports (443, 8443, 5001), plain HTTP elsewhere, falling
   back to the other when the first answers in the wrong one (the certificate subject is
   recorded, never verified);
2. Orthanc: `/system` (version, AE title, DICOM port) when the REST API is open, a 401 with the
   realm "Orthanc Secure Area" when authentication is on; `/statistics` (counts only, no PHI)
   and `/plugins` (viewers installed) when open;
3. DICOMweb QIDO-RS at the usual roots (Orthanc `/dicom-web/`, dcm4chee-arc
   `/dcm4chee-arc/aets/<AET>/rs/` with the AE titles `/dcm4chee-arc/aets` lists): does
   `studies?limit=1` answer without credentials; if so the studies are counted page by page
   (bounded) and patients counted as salted hashes of PatientID + PatientName;
4. viewers and PACS user interfaces by markers of their public pages (dcm4chee-arc UI, OHIF,
   MedDream, Dicoogle, Orthanc's viewer plugins);
5. open directory listings (nginx autoindex, Apache "Index of /", Python http.server): walked and
   sampled with the share walker through `HttpListingFS` (a Range request per file, the first
   `sample_bytes` only), so DICOM is found by content and patients counted like on FTP or SMB;
6. with `try_default_credentials` (opt-in, intrusive): the product's *documented* default
   credentials, one attempt each, only where the product was identified and asks for them.

Everything the peer does wrong (garbage, tarpits, huge or malformed pages and JSON) lands in the
facts as an error; `probe()` never raises for it and is bounded by `HttpConfig.budget`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import ipaddress
import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from dicomguard.audit.runner import AuditContext
from dicomguard.errors import (
    ConnectivityError,
    DicomguardError,
    ProtocolError,
)
from dicomguard.models import Endpoint
from dicomguard.net import http
from dicomguard.net.connector import Connector
from dicomguard.probes.dicom import salted_hash
from dicomguard.probes.facts import TlsFacts
from dicomguard.probes.share_walk import RemoteEntry, ShareLimits, walk_and_sample
from dicomguard.probes.tls import certificate_subject, client_context

#: Ports the engine dispatches to this probe by default.
DEFAULT_HTTP_PORTS: tuple[int, ...] = (80, 443, 8042, 8080, 8443, 5000, 5001, 3000, 8081)
#: Ports where HTTPS is tried before plain HTTP.
TLS_FIRST_PORTS: tuple[int, ...] = (443, 8443, 5001)

ORTHANC_REALM = "orthanc"
DICOM_JSON = "application/dicom+json, application/json;q=0.9"
TAG_PATIENT_ID = "00100020"
TAG_PATIENT_NAME = "00100010"
TAG_STUDY_UID = "0020000D"


@dataclass(frozen=True, slots=True)
class DefaultCredential:
    """A product's documented default login: tried once, only on that product."""

    product: str
    path: str
    username: str
    password: str
    reference: str


#: Documented defaults only, never a dictionary. dcm4chee-arc's secured setups authenticate
#: through Keycloak (OpenID Connect, a POST login flow this read-only probe does not perform);
#: its unsecured setups need no credentials at all, which HTTP-001/003 report.
DEFAULT_CREDENTIALS: tuple[DefaultCredential, ...] = (
    DefaultCredential(
        "Orthanc", "/system", "orthanc", "orthanc",
        "Orthanc Book, 'Orthanc for Docker': \"The default username is orthanc and its "
        "password is orthanc\" (https://orthanc.uclouvain.be/book/users/docker.html); Orthanc "
        "changeset 3298fa589b27 (2025, NEWS): Orthanc creates a default user \"orthanc\" "
        "unless \"RegisteredUsers\" is declared",
    ),
)


@dataclass(frozen=True, slots=True)
class PageSignature:
    """A web application recognised by markers (lower-case substrings) of a public page."""

    product: str
    path: str | None          # None: the root page
    markers: tuple[str, ...]
    kind: str = "viewer"      # "viewer" | "pacs-ui"


PAGE_SIGNATURES: tuple[PageSignature, ...] = (
    PageSignature("dcm4chee-arc UI", "/dcm4chee-arc/ui2/", ("dcm4che",), "pacs-ui"),
    PageSignature("OHIF Viewer", None, ("ohif", "open health imaging foundation")),
    PageSignature("MedDream", None, ("meddream", "softneta")),
    PageSignature("Dicoogle", None, ("dicoogle",), "pacs-ui"),
    PageSignature("Orthanc Explorer", None, ("orthanc explorer",), "pacs-ui"),
    PageSignature("Stone Web Viewer", None, ("stone web viewer", "stone-webviewer")),
    PageSignature("Weasis", None, ("weasis",)),
)

#: Orthanc plugin names (from /plugins) that are viewers or user interfaces.
ORTHANC_VIEWER_PLUGINS: Mapping[str, str] = {
    "stone-webviewer": "Stone Web Viewer",
    "ohif": "OHIF Viewer",
    "orthanc-explorer-2": "Orthanc Explorer 2",
    "osimis-web-viewer": "Osimis Web Viewer",
    "web-viewer": "Orthanc Web Viewer",
    "volview": "VolView",
    "dicom-web": "DICOMweb",
}

# Bounded quantifiers: a hostile page must not make a regex quadratic.
_TITLE = re.compile(rb"<title[^>]{0,200}>(.{0,400}?)</title", re.IGNORECASE | re.DOTALL)
_NGINX_SIZE = re.compile(r"^\s+\S+\s+\S+\s+(\d+|-)\s*$")
_LISTING_MARKERS = ("<title>index of /", "<h1>index of /", "<title>directory listing for /")


# ---------------------------------------------------------------------------------------------
# configuration and facts


@dataclass(frozen=True, slots=True)
class HttpConfig:
    timeout: float = 5.0                  # one request (the connector adds its connect timeout)
    budget: float = 120.0                 # the whole probe, walk included
    max_body: int = 256 * 1024            # pages and small REST answers
    max_json: int = 8 * 1024 * 1024       # one QIDO page
    max_listing: int = 4 * 1024 * 1024    # one directory listing page
    tls_first_ports: tuple[int, ...] = TLS_FIRST_PORTS
    dicomweb_roots: tuple[str, ...] = ("/dicom-web/",)
    dcm4chee_default_aet: str = "DCM4CHEE"
    qido_page: int = 500                  # limit= of one QIDO page
    qido_max_records: int = 10_000        # studies counted at most, then `truncated`
    limits: ShareLimits = field(default_factory=ShareLimits)
    walk_listings: bool = True
    show_phi: bool = False
    try_default_credentials: bool = False  # intrusive: one login per documented default
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))


@dataclass(frozen=True, slots=True)
class WebProduct:
    name: str
    path: str                      # where it was seen
    evidence: str                  # what matched: "/system JSON", "realm", "page marker 'ohif'"
    version: str | None = None
    auth_required: bool | None = None
    kind: str = "viewer"           # "pacs" (REST/DICOM store) | "pacs-ui" | "viewer" | "dicomweb"


@dataclass(frozen=True, slots=True)
class OrthancFacts:
    authentication: bool                   # the REST API asked for credentials
    version: str | None = None             # /system (open, or opened with default credentials)
    name: str | None = None
    dicom_aet: str | None = None
    dicom_port: int | None = None
    api_version: int | None = None
    realm: str | None = None
    plugins: tuple[str, ...] = ()
    patients: int | None = None            # /statistics: counts only, no values
    studies: int | None = None
    series: int | None = None
    instances: int | None = None
    remote_access_allowed: bool | None = None   # answered a non-loopback client (None: loopback)
    via_default_credentials: bool = False  # facts read with the documented default login


@dataclass(frozen=True, slots=True)
class DicomWebFacts:
    root: str
    status: int | None = None              # answer to studies?limit=1
    open: bool = False                     # QIDO answered without credentials
    auth_required: bool = False
    studies: int = 0
    patients: int = 0                      # distinct salted hashes of PatientID + PatientName
    records: int = 0
    truncated: bool = False                # stopped at qido_max_records (or offset ignored)
    attributes_returned: tuple[str, ...] = ()
    error: str | None = None
    phi_sample: tuple[str, ...] = ()       # only with show_phi


@dataclass(frozen=True, slots=True)
class ListingFacts:
    path: str
    server: str                            # "nginx autoindex" | "Apache" | "http.server" | ...
    walk: Mapping[str, Any] = field(default_factory=dict)   # WalkResult.facts(), PHI-free

    @property
    def dicom_files(self) -> int:
        return int(self.walk.get("dicom_files", 0))

    @property
    def patients(self) -> int:
        return int(self.walk.get("patients", 0))


@dataclass(frozen=True, slots=True)
class CredentialAttempt:
    product: str
    path: str
    username: str
    accepted: bool
    status: int | None = None
    error: str | None = None
    reference: str = ""


@dataclass(frozen=True, slots=True)
class HttpFacts:
    endpoint: Endpoint
    reachable: bool = False                # some HTTP answer came back
    scheme: str | None = None              # "http" | "https"
    tls: TlsFacts | None = None            # the HTTPS attempt (successful or not)
    server: str | None = None              # Server header
    root_status: int | None = None
    title: str | None = None
    landing: str | None = None             # where / redirects to on this endpoint (path)
    products: tuple[WebProduct, ...] = ()
    orthanc: OrthancFacts | None = None
    dicomweb: tuple[DicomWebFacts, ...] = ()
    listing: ListingFacts | None = None
    credentials_tried: bool = False
    credentials: tuple[CredentialAttempt, ...] = ()
    requests: int = 0
    errors: tuple[str, ...] = ()           # failed requests: "path: reason"
    limits_reached: tuple[str, ...] = ()
    error: str | None = None               # why nothing could be probed
    seconds: float = 0.0

    @property
    def is_http(self) -> bool:
        return self.reachable

    @property
    def product(self) -> str | None:
        best = self.main_product
        return best.name if best else None

    @property
    def version(self) -> str | None:
        best = self.main_product
        return best.version if best else None

    @property
    def main_product(self) -> WebProduct | None:
        order = {"pacs": 0, "dicomweb": 1, "pacs-ui": 2, "viewer": 3}
        ranked = sorted(self.products, key=lambda p: (p.version is None, order.get(p.kind, 9)))
        return ranked[0] if ranked else None

    @property
    def open_dicomweb(self) -> tuple[DicomWebFacts, ...]:
        return tuple(d for d in self.dicomweb if d.open)

    def summary(self) -> dict[str, Any]:
        """PHI-free facts for the Service record and reports."""
        out: dict[str, Any] = {"http": self.reachable, "requests": self.requests}
        for key in ("scheme", "server", "root_status", "title", "landing", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.tls is not None:
            out["tls"] = {k: v for k, v in dataclasses.asdict(self.tls).items() if v is not None}
        if self.products:
            out["products"] = [{k: v for k, v in dataclasses.asdict(p).items() if v is not None}
                               for p in self.products]
        if self.orthanc is not None:
            out["orthanc"] = {k: v for k, v in dataclasses.asdict(self.orthanc).items()
                              if v not in (None, ())}
        if self.dicomweb:
            out["dicomweb"] = [{k: v for k, v in dataclasses.asdict(d).items()
                                if k != "phi_sample" and v not in (None, ())}
                               for d in self.dicomweb]
        if self.listing is not None:
            out["listing"] = {"path": self.listing.path, "server": self.listing.server,
                              **self.listing.walk}
        if self.credentials_tried:
            out["default_credentials"] = [
                {"product": c.product, "username": c.username, "accepted": c.accepted,
                 "status": c.status, "error": c.error} for c in self.credentials]
        if self.errors:
            out["errors"] = list(self.errors)
        if self.limits_reached:
            out["limits_reached"] = list(self.limits_reached)
        return out


# ---------------------------------------------------------------------------------------------
# helpers


def parse_json(body: bytes) -> Any:
    """JSON or None: malformed, truncated, too deeply nested or undecodable bodies give None."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def page_title(body: bytes) -> str | None:
    match = _TITLE.search(body[:65536])
    if not match:
        return None
    text = html.unescape(match.group(1).decode("utf-8", "replace"))
    text = " ".join(text.split())
    return text[:120] or None


def is_listing(body: bytes) -> bool:
    head = body[:4096].decode("latin-1").lower()
    return any(marker in head for marker in _LISTING_MARKERS)


def listing_server(body: bytes, server_header: str | None) -> str:
    text = body[:65536].decode("latin-1").lower()
    server = (server_header or "").lower()
    if "directory listing for" in text:
        return "http.server"
    if "apache" in server or "<address>apache" in text:
        return "Apache"
    if "nginx" in server or "<hr><pre>" in text.replace("\n", ""):
        return "nginx autoindex"
    return "generic listing"


def iter_links(text: str) -> Iterator[tuple[str, str]]:
    """(href, rest of its line after </a>) of every <a href=...> in text, in linear time:
    str.find scans and bounded look-arounds instead of a regex that could backtrack."""
    lower = text.lower()
    pos = 0
    while True:
        at = lower.find("href", pos)
        if at < 0:
            return
        pos = at + 4
        tag = lower.rfind("<", max(0, at - 512), at)
        if tag < 0 or not lower.startswith("<a", tag) or not lower[tag + 2:tag + 3].isspace() \
                or ">" in lower[tag:at]:
            continue
        i = pos
        while i < len(text) and i < pos + 16 and text[i].isspace():
            i += 1
        if text[i:i + 1] != "=":
            continue
        i += 1
        while i < len(text) and i < pos + 32 and text[i].isspace():
            i += 1
        quote_char = text[i:i + 1]
        if quote_char in ("\"", "'"):
            close = text.find(quote_char, i + 1, i + 2050)
            if close < 0:
                continue
            href, end = text[i + 1:close], close + 1
        else:
            end = i
            while end < len(text) and end < i + 2048 and not text[end].isspace() \
                    and text[end] != ">":
                end += 1
            href = text[i:end]
        pos = max(pos, end)
        close_a = lower.find("</a>", end, end + 1024)
        tail = ""
        if close_a >= 0:
            newline = text.find("\n", close_a, close_a + 256)
            tail = text[close_a + 4:newline if newline >= 0 else close_a + 256]
        yield href, tail


def parse_listing(body: bytes, directory: str, max_entries: int) -> list[RemoteEntry]:
    """The entries of an HTML directory listing that lie directly inside `directory`.

    Links that leave the directory (parent, absolute URLs, other hosts, sort links with a query
    string) are ignored; names are percent-decoded; nginx's exact sizes are kept when present.
    """
    text = body.decode("utf-8", "replace")
    base = directory if directory.endswith("/") else directory + "/"
    entries: dict[str, RemoteEntry] = {}
    for raw, tail in iter_links(text):
        href = html.unescape(raw).strip()
        if not href or href[0] in "?#" or "://" in href or href.startswith("//") \
                or ":" in href.split("/", 1)[0]:
            continue
        href = href.split("#", 1)[0].split("?", 1)[0]
        if href.startswith("/"):
            if not href.startswith(base):
                continue
            href = href[len(base):]
        if href.startswith("./"):
            href = href[2:]
        is_dir = href.endswith("/")
        name = unquote(href.rstrip("/"))
        if not name or name in (".", "..") or any(c in name for c in '/\\<>"') \
                or any(ord(c) < 0x20 for c in name):
            continue
        size: int | None = None
        if not is_dir:
            match = _NGINX_SIZE.match(tail)
            if match and match.group(1).isdigit():
                size = int(match.group(1))
        entries.setdefault(name, RemoteEntry(name, is_dir, size))
        if len(entries) >= max_entries:
            break
    return list(entries.values())


def _dicom_json_text(record: Mapping[str, Any], tag: str) -> str:
    element = record.get(tag)
    if not isinstance(element, dict):
        return ""
    values = element.get("Value")
    if not isinstance(values, list) or not values:
        return ""
    value = values[0]
    if isinstance(value, dict):
        parts = [value.get(k) for k in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(p for p in parts if isinstance(p, str))
    if isinstance(value, str | int | float):
        return str(value).strip()
    return ""


def _keyword(tag: str) -> str:
    from pydicom.datadict import keyword_for_tag

    try:
        return keyword_for_tag(int(tag, 16)) or tag
    except ValueError:
        return tag


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def same_endpoint_path(location: str | None, *, tls: bool, port: int,
                       names: tuple[str, ...]) -> str | None:
    """The path (and query) a redirect's Location points to when it stays on this endpoint:
    relative, or the same scheme, one of ``names`` (the address, the host name) and the same
    port. None when it leaves the endpoint or is no usable URL: the probe never follows a
    redirect elsewhere."""
    if not location or len(location) > 2048 or any(c in location for c in "\r\n\x00\\"):
        return None
    try:
        parts = urlsplit(location.strip())
        target_port = parts.port
    except ValueError:
        return None
    if parts.scheme or parts.netloc:
        scheme = "https" if tls else "http"
        if parts.scheme.lower() != scheme or (parts.hostname or "").lower() not in {
                n.lower().strip("[]") for n in names}:
            return None
        if (target_port or (443 if tls else 80)) != port:
            return None
    path = urljoin("/", parts.path or "/")
    if not path.startswith("/") or path.startswith("//"):
        return None
    target = path + ("?" + parts.query if parts.query else "")
    return quote(target, safe="/?&=%:@!$'()*+,;~-._")   # no space or control in the request


def _short(exc: BaseException) -> str:
    if isinstance(exc, ConnectivityError):
        return exc.reason
    return str(exc)[:160] or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# the directory-listing file system for the share walker


class HttpListingFS:
    """A RemoteFS over HTML directory listings: list_dir parses a listing page, read_prefix
    asks for `bytes=0-(n-1)` and reads at most n bytes whatever the server sends."""

    def __init__(self, prober: _Prober, root: str) -> None:
        self.prober = prober
        self.root = root if root.endswith("/") else root + "/"

    def _url(self, path: str) -> str:
        return quote(self.root.rstrip("/") + path, safe="/")

    async def list_dir(self, path: str) -> list[RemoteEntry]:
        url = self._url(path)
        if not url.endswith("/"):
            url += "/"
        resp = await self.prober.request(url, max_body=self.prober.cfg.max_listing)
        if resp.status != 200 or not is_listing(resp.body):
            raise ProtocolError(f"not a directory listing (HTTP {resp.status})",
                                protocol="http")
        limit = self.prober.cfg.limits.max_entries
        return parse_listing(resp.body, url, limit)

    async def read_prefix(self, path: str, size: int) -> bytes:
        resp = await self.prober.request(self._url(path), max_body=size,
                                         headers={"Range": f"bytes=0-{size - 1}"})
        if resp.status not in (200, 206):
            raise ProtocolError(f"HTTP {resp.status}", protocol="http")
        return resp.body[:size]


# ---------------------------------------------------------------------------------------------
# the probe


class _Prober:
    def __init__(self, endpoint: Endpoint, connector: Connector, cfg: HttpConfig) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.cfg = cfg
        self.started = time.monotonic()
        self.tls_mode = False
        self.requests = 0
        self.errors: list[str] = []
        self.limits: list[str] = []
        self.reachable = False
        self.tls_facts: TlsFacts | None = None
        self.server: str | None = None
        self.root_status: int | None = None
        self.title: str | None = None
        self.landing: str | None = None
        self.products: list[WebProduct] = []
        self.orthanc: OrthancFacts | None = None
        self.dicomweb: list[DicomWebFacts] = []
        self.listing: ListingFacts | None = None
        self.credentials: list[CredentialAttempt] = []
        self.error: str | None = None
        self._ssl = client_context()

    # -- plumbing ------------------------------------------------------------------------------

    async def request(self, path: str, *, max_body: int | None = None,
                      headers: dict[str, str] | None = None,
                      tls: bool | None = None) -> http.HttpResponse:
        self.requests += 1
        use_tls = self.tls_mode if tls is None else tls
        return await http.request(
            self.connector, self.endpoint.address, self.endpoint.port, path, tls=use_tls,
            host=self.endpoint.hostname, headers=headers, timeout=self.cfg.timeout,
            max_body=max_body or self.cfg.max_body, ssl_context=self._ssl,
            server_hostname=self.endpoint.hostname if use_tls else None)

    async def get(self, path: str, *, max_body: int | None = None,
                  headers: dict[str, str] | None = None) -> http.HttpResponse | None:
        """A GET whose failure is recorded, not raised."""
        try:
            return await self.request(path, max_body=max_body, headers=headers)
        except DicomguardError as exc:
            self.errors.append(f"{path}: {_short(exc)}")
            return None

    def add_product(self, product: WebProduct) -> None:
        if all(p.name != product.name for p in self.products):
            self.products.append(product)

    def facts(self) -> HttpFacts:
        return HttpFacts(
            endpoint=self.endpoint, reachable=self.reachable,
            scheme=("https" if self.tls_mode else "http") if self.reachable else None,
            tls=self.tls_facts, server=self.server, root_status=self.root_status,
            title=self.title, landing=self.landing, products=tuple(self.products),
            orthanc=self.orthanc,
            dicomweb=tuple(self.dicomweb), listing=self.listing,
            credentials_tried=self.cfg.try_default_credentials,
            credentials=tuple(self.credentials), requests=self.requests,
            errors=tuple(self.errors[:50]), limits_reached=tuple(self.limits),
            error=self.error, seconds=round(time.monotonic() - self.started, 3))

    # -- steps ---------------------------------------------------------------------------------

    async def run(self) -> None:
        root = await self.first_contact()
        if root is None:
            return
        landing = await self.follow_root_redirect(root)
        await self.orthanc_rest()
        await self.dicomweb_roots()
        await self.pages(root, landing)
        if self.cfg.try_default_credentials:
            await self.default_credentials()
        page, path = (landing, self.landing) if landing is not None else (root, "/")
        if (self.cfg.walk_listings and path is not None and page.status == 200
                and is_listing(page.body)):
            await self.walk_listing(unquote(path.split("?", 1)[0]), page)

    async def follow_root_redirect(self, root: http.HttpResponse) -> http.HttpResponse | None:
        """When / redirects within this endpoint (a viewer or a listing under a path: nginx's
        ``return 302 /viewer/``, Orthanc's /app/explorer.html), GET the target once; its page
        is looked at like the root's. Redirects to another host, port or scheme are not
        followed (that endpoint is probed on its own when it is in scope)."""
        if root.status not in _REDIRECTS:
            return None
        names = tuple(n for n in (self.endpoint.address, self.endpoint.hostname) if n)
        path = same_endpoint_path(root.header("location"), tls=self.tls_mode,
                                  port=self.endpoint.port, names=names)
        if path is None or path == "/":
            return None
        resp = await self.get(path)
        if resp is None:
            return None
        self.landing = path.split("?", 1)[0][:200]
        return resp

    async def first_contact(self) -> http.HttpResponse | None:
        """GET / over HTTPS and/or HTTP; sets the scheme. None when no HTTP answer came.

        The first scheme is HTTPS on TLS ports, plain elsewhere; the other is tried only when
        the first failed in a way that says "wrong scheme" (a failed handshake, a TLS record
        or nginx's "plain HTTP request was sent to HTTPS port"), never after a timeout."""
        port = self.endpoint.port
        tls = port in self.cfg.tls_first_ports
        tried: set[bool] = set()
        trail: list[str] = []    # what each attempt ran into, in order
        while tls not in tried:
            tried.add(tls)
            try:
                resp = await self.request("/", tls=tls)
            except http.TlsHandshakeError as exc:
                trail.append(_short(exc))
                self.tls_facts = TlsFacts(port=port, handshake=False, error=trail[-1])
                tls = False
                continue
            except ProtocolError as exc:
                trail.append(_short(exc))
                if not tls and "speaks TLS" in trail[-1]:
                    tls = True
                    continue
                break
            except DicomguardError as exc:   # refused, timed out (tarpit), out of scope
                trail.append(_short(exc))
                if tls:
                    self.tls_facts = TlsFacts(port=port, handshake=False, error=trail[-1])
                break
            if not tls and resp.status == 400 and b"https port" in resp.body[:2048].lower():
                trail.append("plain HTTP refused: HTTPS port")
                tls = True
                continue
            self.reachable = True
            self.tls_mode = tls
            if tls and resp.tls is not None:
                self.tls_facts = TlsFacts(
                    port=port, handshake=True, protocol=resp.tls.version, cipher=resp.tls.cipher,
                    certificate_subject=certificate_subject(resp.tls.certificate_der))
            self.server = (resp.header("server") or "")[:80] or None
            self.root_status = resp.status
            self.title = page_title(resp.body)
            return resp
        self.error = "no HTTP answer: " + "; then ".join(trail) if trail else "no HTTP answer"
        return None

    async def orthanc_rest(self) -> None:
        resp = await self.get("/system", max_body=64 * 1024)
        if resp is None:
            return
        realm = resp.header("www-authenticate") or ""
        if resp.status == 401 and ORTHANC_REALM in realm.lower():
            self.orthanc = OrthancFacts(authentication=True, realm=realm[:80],
                                        remote_access_allowed=self._remote())
            self.add_product(WebProduct("Orthanc", "/system", "401 with the Orthanc realm",
                                        auth_required=True, kind="pacs"))
            return
        doc = parse_json(resp.body) if resp.status == 200 else None
        if not _orthanc_system(doc):
            return
        assert isinstance(doc, dict)
        stats = await self._orthanc_statistics(None)
        plugins = await self.get("/plugins", max_body=64 * 1024)
        names = parse_json(plugins.body) if plugins is not None and plugins.status == 200 else None
        plugin_names = tuple(str(n)[:60] for n in names[:50] if isinstance(n, str)) \
            if isinstance(names, list) else ()
        self.orthanc = _orthanc_facts(doc, stats, plugin_names, self._remote(), False)
        self.add_product(WebProduct("Orthanc", "/system", "/system JSON",
                                    version=self.orthanc.version, auth_required=False,
                                    kind="pacs"))
        for plugin in plugin_names:
            label = ORTHANC_VIEWER_PLUGINS.get(plugin)
            if label and plugin != "dicom-web":
                self.add_product(WebProduct(label, "/plugins", f"Orthanc plugin {plugin!r}"))

    def _remote(self) -> bool | None:
        return None if _is_loopback(self.endpoint.address) else True

    async def _orthanc_statistics(self, auth: str | None) -> dict[str, Any] | None:
        headers = {"Authorization": auth} if auth else None
        resp = await self.get("/statistics", max_body=64 * 1024, headers=headers)
        doc = parse_json(resp.body) if resp is not None and resp.status == 200 else None
        return doc if isinstance(doc, dict) else None

    async def dicomweb_roots(self) -> None:
        roots = list(self.cfg.dicomweb_roots)
        aets = await self.get("/dcm4chee-arc/aets", max_body=256 * 1024,
                              headers={"Accept": "application/json"})
        if aets is not None and aets.status != 404:
            doc = parse_json(aets.body) if aets.status == 200 else None
            titles = [str(a.get("dicomAETitle"))[:16] for a in doc[:8]
                      if isinstance(a, dict) and isinstance(a.get("dicomAETitle"), str)] \
                if isinstance(doc, list) else []
            # A 401 alone proves nothing (a server may ask for credentials everywhere): the
            # archive's Keycloak challenge names its realm.
            secured = aets.status in (401, 403) and \
                "dcm4che" in (aets.header("www-authenticate") or "").lower()
            if secured or titles:
                self.add_product(WebProduct(
                    "dcm4chee-arc", "/dcm4chee-arc/aets",
                    "AE list" if titles else "dcm4che realm on the archive REST API",
                    auth_required=secured, kind="pacs"))
                for title in titles or [self.cfg.dcm4chee_default_aet]:
                    roots.append(f"/dcm4chee-arc/aets/{quote(title, safe='')}/rs/")
        for root in dict.fromkeys(roots):
            facts = await self.qido(root)
            if facts is not None:
                self.dicomweb.append(facts)
                if facts.open:
                    self.add_product(WebProduct("DICOMweb", root, "QIDO-RS answered",
                                                auth_required=False, kind="dicomweb"))

    async def qido(self, root: str) -> DicomWebFacts | None:
        """studies?limit=1 without credentials; counts when it answers."""
        headers = {"Accept": DICOM_JSON}
        resp = await self.get(f"{root}studies?limit=1", max_body=1024 * 1024, headers=headers)
        if resp is None:
            return None
        if resp.status in (401, 403):
            if self.root_status in (401, 403) and not root.startswith("/dcm4chee-arc/"):
                return None   # everything asks for credentials: no sign of DICOMweb here
            return DicomWebFacts(root, resp.status, auth_required=True)
        if resp.status == 204:
            return DicomWebFacts(root, resp.status, open=True)
        doc = parse_json(resp.body) if resp.status == 200 else None
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            return None
        return await self._qido_count(root, headers)

    async def _qido_count(self, root: str, headers: dict[str, str]) -> DicomWebFacts:
        studies: set[str] = set()
        patients: set[str] = set()
        attributes: set[str] = set()
        sample: list[str] = []
        records = 0
        truncated = False
        error: str | None = None
        offset = 0
        previous = b""
        page = max(1, self.cfg.qido_page)
        while True:
            if records >= self.cfg.qido_max_records:
                truncated = True
                break
            limit = min(page, self.cfg.qido_max_records - records)
            resp = await self.get(f"{root}studies?limit={limit}&offset={offset}",
                                  max_body=self.cfg.max_json, headers=headers)
            if resp is None:
                error = self.errors[-1] if self.errors else "request failed"
                break
            if resp.status == 204:
                break
            doc = parse_json(resp.body) if resp.status == 200 else None
            if not isinstance(doc, list):
                error = (f"page at offset {offset}: HTTP {resp.status}" if resp.status != 200
                         else f"page at offset {offset}: "
                              f"{'too large' if resp.truncated else 'malformed'} JSON")
                break
            if resp.body == previous:    # the server ignores offset: the same page again
                truncated = True
                break
            previous = resp.body
            for record in doc:
                if not isinstance(record, dict):
                    continue
                records += 1
                uid = _dicom_json_text(record, TAG_STUDY_UID)
                if uid:
                    studies.add(uid)
                pid = _dicom_json_text(record, TAG_PATIENT_ID)
                name = _dicom_json_text(record, TAG_PATIENT_NAME)
                if pid or name:
                    patients.add(salted_hash(self.cfg.salt, pid, name))
                    if self.cfg.show_phi and len(sample) < 5:
                        sample.append(f"{name} / {pid}")
                if len(attributes) < 64:
                    attributes.update(t for t, el in record.items()
                                      if len(t) == 8 and isinstance(el, dict) and el.get("Value"))
            if len(doc) < limit:
                break
            offset += len(doc)
        return DicomWebFacts(
            root, 200, open=True, studies=len(studies), patients=len(patients),
            records=records, truncated=truncated,
            attributes_returned=tuple(sorted(_keyword(t) for t in attributes)),
            error=error, phi_sample=tuple(sample))

    async def pages(self, root: http.HttpResponse,
                    landing: http.HttpResponse | None = None) -> None:
        """Viewers and PACS user interfaces by the markers of their pages (the root's, and
        the page / redirects to on this endpoint)."""
        root_text = root.body[:262144].decode("utf-8", "replace").lower()
        location = (root.header("location") or "").lower()
        landing_text = ("" if landing is None or landing.status != 200
                        else landing.body[:262144].decode("utf-8", "replace").lower())
        fetched: dict[str, str] = {}
        for sig in PAGE_SIGNATURES:
            if sig.path is None:
                text, path = root_text + " " + location, "/"
                if self.landing and not any(m in text for m in sig.markers):
                    text, path = landing_text, self.landing
            else:
                if sig.path not in fetched:
                    resp = await self.get(sig.path)
                    fetched[sig.path] = (resp.body[:262144].decode("utf-8", "replace").lower()
                                         if resp is not None and resp.status == 200 else "")
                text, path = fetched[sig.path], sig.path
            marker = next((m for m in sig.markers if m in text), None)
            if marker is not None:
                self.add_product(WebProduct(sig.product, path, f"page marker {marker!r}",
                                            kind=sig.kind))

    async def default_credentials(self) -> None:
        for cred in DEFAULT_CREDENTIALS:
            if not any(p.name == cred.product and p.auth_required for p in self.products):
                continue
            auth = http.basic_auth(cred.username, cred.password)
            try:
                resp = await self.request(cred.path, max_body=64 * 1024,
                                          headers={"Authorization": auth})
            except DicomguardError as exc:
                self.credentials.append(CredentialAttempt(
                    cred.product, cred.path, cred.username, False, error=_short(exc),
                    reference=cred.reference))
                continue
            accepted = resp.status == 200
            doc = parse_json(resp.body) if accepted else None
            if cred.product == "Orthanc":
                accepted = accepted and _orthanc_system(doc)
            self.credentials.append(CredentialAttempt(
                cred.product, cred.path, cred.username, accepted, resp.status,
                reference=cred.reference))
            if accepted and cred.product == "Orthanc" and isinstance(doc, dict):
                stats = await self._orthanc_statistics(auth)
                self.orthanc = dataclasses.replace(
                    _orthanc_facts(doc, stats, (), self._remote(), True), authentication=True,
                    realm=self.orthanc.realm if self.orthanc else None)
                self.products = [dataclasses.replace(p, version=self.orthanc.version)
                                 if p.name == "Orthanc" else p for p in self.products]

    async def walk_listing(self, path: str, page: http.HttpResponse) -> None:
        remaining = self.cfg.budget - (time.monotonic() - self.started) - self.cfg.timeout
        limits = self.cfg.limits
        if remaining < limits.time_budget:
            limits = dataclasses.replace(limits, time_budget=max(0.0, remaining))
        if self.cfg.show_phi and not limits.show_phi:
            limits = dataclasses.replace(limits, show_phi=True)
        ctx = AuditContext(salt=self.cfg.salt, show_phi=limits.show_phi)
        result = await walk_and_sample(HttpListingFS(self, path), limits, ctx)
        self.listing = ListingFacts(path, listing_server(page.body, self.server), result.facts())


def _orthanc_system(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("Version"), str) and "DicomAet" in doc


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _orthanc_facts(doc: dict[str, Any], stats: dict[str, Any] | None, plugins: tuple[str, ...],
                   remote: bool | None, via_default: bool) -> OrthancFacts:
    def text(key: str) -> str | None:
        value = doc.get(key)
        return value[:80] if isinstance(value, str) else None

    stats = stats or {}
    return OrthancFacts(
        authentication=False, version=text("Version"), name=text("Name"),
        dicom_aet=text("DicomAet"), dicom_port=_int(doc.get("DicomPort")),
        api_version=_int(doc.get("ApiVersion")), plugins=plugins,
        patients=_int(stats.get("CountPatients")), studies=_int(stats.get("CountStudies")),
        series=_int(stats.get("CountSeries")), instances=_int(stats.get("CountInstances")),
        remote_access_allowed=remote, via_default_credentials=via_default)


async def probe(endpoint: Endpoint, connector: Connector, cfg: HttpConfig) -> HttpFacts:
    """Probe one HTTP(S) endpoint; never raises for what the peer does, bounded by cfg.budget."""
    prober = _Prober(endpoint, connector, cfg)
    try:
        async with asyncio.timeout(cfg.budget):
            await prober.run()
    except TimeoutError:
        prober.limits.append("budget")
    except DicomguardError as exc:   # pragma: no cover - steps record their own errors
        prober.error = _short(exc)
    facts = prober.facts()
    if facts.reachable or facts.error is not None:
        return facts
    return dataclasses.replace(facts, error="no HTTP answer within the probe budget")


def endpoint_url(facts: HttpFacts, path: str = "/") -> str:
    """A display URL for reports (no credentials, no patient data)."""
    host = facts.endpoint.hostname or facts.endpoint.address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{facts.scheme or 'http'}://{host}:{facts.endpoint.port}{path}"

