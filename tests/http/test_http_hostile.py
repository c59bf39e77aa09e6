"""The HTTP probe against hostile and fake servers: garbage, tarpits, drips, huge or malformed
pages and JSON, listings that try to escape or never end, product pages of web PACS and
viewers. Each fails cleanly, in bounded time, with the reason in the facts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fakeweb import (
    FakeWeb,
    drip,
    endless,
    garbage,
    json_response,
    response,
    slow,
    tarpit,
)
from httpcheck_helpers import evaluate, failures

from dicomguard.errors import ProtocolError
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net import http
from dicomguard.net.connector import Connector
from dicomguard.probes.http import (
    HttpConfig,
    HttpFacts,
    is_listing,
    page_title,
    parse_json,
    parse_listing,
    probe,
)
from dicomguard.probes.share_walk import ShareLimits

CT = (Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm").read_bytes()
TIMEOUT = 1.0


def connector() -> Connector:
    return Connector(None, rate=0, per_host=2, connect_timeout=1.0)


async def probe_fake(web: FakeWeb, cfg: HttpConfig | None = None) -> HttpFacts:
    return await probe(Endpoint("127.0.0.1", web.port, "http"), connector(),
                       cfg or HttpConfig(timeout=TIMEOUT))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def timed(web_factory: Any, cfg: HttpConfig | None = None) -> tuple[HttpFacts, float]:
    async def go() -> tuple[HttpFacts, float]:
        async with web_factory() as web:
            start = time.monotonic()
            facts = await probe_fake(web, cfg)
            return facts, time.monotonic() - start
    result: tuple[HttpFacts, float] = run(go())
    return result


# --- not HTTP, or never answering -----------------------------------------------------------


@pytest.mark.parametrize("behaviour, reason", [
    (garbage(b"\x80\xd5p~\xbd" * 100), "not an HTTP response"),
    (garbage(b"SSH-2.0-OpenSSH_9.2\r\n"), "not an HTTP response"),
    (garbage(b"\x15\x03\x01\x00\x02\x02\x46"), "speaks TLS"),
    (tarpit, "no HTTP answer within"),
    (drip(b"HTTP/1.1 200 OK\r\n"), "no HTTP answer within"),
    (garbage(b"HTTP/1.1 200 OK\r\nX: " + b"a" * (2 << 20)), "header too long"),
    (garbage(b"HTTP/1.1 abc\r\n\r\n"), "not an HTTP response"),
    (garbage(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), "malformed HTTP header"),
])
def test_hostile_root_fails_cleanly_within_timeout(behaviour: Any, reason: str) -> None:
    facts, elapsed = timed(lambda: FakeWeb(on_connect=None, default=behaviour))
    assert not facts.reachable
    assert facts.error is not None and reason in facts.error
    assert elapsed < 2 * TIMEOUT + 1.0     # a TLS retry at most doubles one wait
    assert all(evaluate(facts)[c].status is Status.UNKNOWN for c in evaluate(facts))
    assert failures(facts) == {}


def test_tarpit_on_tls_port_is_not_retried_in_plain() -> None:
    async def go() -> tuple[HttpFacts, float]:
        async with FakeWeb(on_connect=tarpit) as web:
            start = time.monotonic()
            facts = await probe_fake(web, HttpConfig(timeout=TIMEOUT,
                                                     tls_first_ports=(web.port,)))
            return facts, time.monotonic() - start
    facts, elapsed = run(go())
    assert not facts.reachable and facts.requests == 1
    assert facts.tls is not None and not facts.tls.handshake
    # the timeout, plus at most the connector's 1 s close grace for the half-made TLS stream
    assert elapsed < TIMEOUT + 1.5


def test_closed_port_and_out_of_scope() -> None:
    async def go() -> tuple[HttpFacts, HttpFacts]:
        async with FakeWeb() as web:
            port = web.port
        closed = await probe(Endpoint("127.0.0.1", port, "http"), connector(), HttpConfig())

        class Nothing:
            def allows(self, address: str) -> bool:
                return False

        guarded = await probe(Endpoint("127.0.0.1", port, "http"),
                              Connector(Nothing(), rate=0), HttpConfig())
        return closed, guarded
    closed, guarded = run(go())
    assert closed.error is not None and "refused" in closed.error
    assert guarded.error is not None and "outside the scan scope" in guarded.error
    assert guarded.requests == 1


def test_budget_bounds_a_slow_server() -> None:
    page = response(200, "<title>Index of /</title>" + "".join(
        f'<a href="d{i}/">d{i}/</a>\n' for i in range(50)))
    facts, elapsed = timed(lambda: FakeWeb(prefix_routes={"/": slow(page, 0.3)}),
                           HttpConfig(timeout=TIMEOUT, budget=1.5))
    assert facts.reachable
    assert "budget" in facts.limits_reached
    assert elapsed < 2.5


# --- huge and malformed answers --------------------------------------------------------------


def test_huge_pages_are_cut() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1073741824\r\n\r\n"
    big = endless(head + b"<html><title>Big &amp; slow</title>", b"<p>" + b"x" * 65533)
    chunked = endless(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                      b"10000\r\n" + b"y" * 0x10000 + b"\r\n")
    eof = endless(b"HTTP/1.0 200 OK\r\n\r\n", b"z" * 65536)
    for behaviour in (big, chunked, eof):
        facts, elapsed = timed(lambda b=behaviour: FakeWeb(default=b),
                               HttpConfig(timeout=TIMEOUT, max_body=128 * 1024))
        assert facts.reachable and facts.root_status == 200
        assert elapsed < 10
        assert behaviour.sent["body"] < 64 * 1024 * 1024   # type: ignore[attr-defined]
    assert facts.products == ()


def test_http_client_bounds(tmp_path: Path) -> None:
    async def go() -> list[Any]:
        routes = {
            "/chunked-bad": garbage(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"-5\r\nabc"),
            "/chunked-nohex": garbage(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      b"zz\r\nabc"),
            "/short": garbage(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"),
            "/eof": garbage(b"HTTP/1.1 200 OK\r\n\r\n" + b"q" * 3000),
        }
        out: list[Any] = []
        async with FakeWeb({k: v for k, v in routes.items() if k != "/eof"}) as web:
            for path in ("/chunked-bad", "/chunked-nohex", "/short"):
                try:
                    await http.request(connector(), "127.0.0.1", web.port, path, timeout=0.5)
                    out.append(None)
                except ProtocolError as exc:
                    out.append(str(exc))
                except Exception as exc:   # a timeout is acceptable for /short
                    out.append(type(exc).__name__)

        async def eof(writer: asyncio.StreamWriter, p: str, h: dict[str, str]) -> None:
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
            for _ in range(3):
                writer.write(b"q" * 1000)
                await writer.drain()
                await asyncio.sleep(0.01)
        async with FakeWeb({"/eof": eof}) as web:
            resp = await http.request(connector(), "127.0.0.1", web.port, "/eof", timeout=2)
            out.append(len(resp.body))
        with pytest.raises(ValueError):
            await http.request(connector(), "127.0.0.1", 1, "/a b\r\nX: y", timeout=1)
        with pytest.raises(ValueError):
            await http.request(connector(), "127.0.0.1", 1, "/", method="POST", timeout=1)
        return out
    out = run(go())
    assert "bad chunk size" in out[0] and "bad chunk size" in out[1]
    assert out[2] is not None
    assert out[3] == 3000          # a body delimited by EOF is read to the end, not one chunk


@pytest.mark.parametrize("body", [
    b"{not json",
    b'{"Version": "1.0", "DicomAet"',                 # truncated
    b"[" * 200_000 + b"]" * 200_000,                  # deep nesting
    b'{"Version": 1, "DicomAet": []}',                # wrong types
    b"\xff\xfe\x00garbage",
    b'{"Version": "1' + b"1" * 10000 + b'", "DicomAet": "X", "DicomPort": 1e999}',
])
def test_malformed_json_everywhere(body: bytes) -> None:
    bad = response(200, body, content_type="application/json")
    facts, _ = timed(lambda: FakeWeb(prefix_routes={"/system": bad, "/dicom-web/": bad,
                                                    "/dcm4chee-arc/": bad, "/statistics": bad}))
    assert facts.reachable
    assert facts.dicomweb == ()
    assert failures(facts) in ({}, {"HTTP-001": Severity.HIGH, "HTTP-006": Severity.MEDIUM})
    if facts.orthanc is not None:    # the long-version case is valid JSON with the right keys
        assert facts.orthanc.patients is None and facts.orthanc.dicom_port is None
        assert facts.orthanc.version is not None and len(facts.orthanc.version) <= 80


# --- DICOMweb -------------------------------------------------------------------------------


def study(uid: str, pid: str | None, name: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"0020000D": {"vr": "UI", "Value": [uid]}}
    if pid is not None:
        rec["00100020"] = {"vr": "LO", "Value": [pid]}
    if name is not None:
        rec["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": name}]}
    return rec


def qido_server(records: list[dict[str, Any]], *, honour_offset: bool = True) -> Any:
    async def qido(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&")) \
            if "?" in path else {}
        limit = int(query.get("limit", 1000))
        offset = int(query.get("offset", 0)) if honour_offset else 0
        page = records[offset:offset + limit]
        writer.write(json_response(page, content_type="application/dicom+json"))
        await writer.drain()
    return qido


def test_qido_counts_and_odd_records() -> None:
    records = [study(f"1.2.3.{i}", f"P{i % 4}", f"SYNTH^PERSON{i % 4}") for i in range(11)]
    records += [
        study("1.2.3.99", None, None),                       # no patient attributes
        {"0020000D": "not an element"},                      # malformed element
        {"0020000D": {"vr": "UI", "Value": None}},
        {"00100020": {"vr": "LO", "Value": [{"weird": 1}]}},
        "not a record",                                      # type: ignore[list-item]
    ]
    factory = lambda: FakeWeb(prefix_routes={"/dicom-web/studies": qido_server(records)})  # noqa: E731
    facts, _ = timed(factory, HttpConfig(timeout=TIMEOUT, qido_page=4))
    (dw,) = facts.dicomweb
    assert dw.open and dw.studies == 12 and dw.patients == 4 and not dw.truncated
    assert dw.records == 15           # the string is not a record
    assert failures(facts) == {"HTTP-003": Severity.CRITICAL, "HTTP-006": Severity.MEDIUM}
    assert "PERSON" not in repr(facts) and "P1" not in repr(evaluate(facts))


def test_qido_ignoring_offset_is_not_counted_twice() -> None:
    records = [study(f"1.2.3.{i}", f"P{i}", "X^Y") for i in range(10)]
    factory = lambda: FakeWeb(prefix_routes={  # noqa: E731
        "/dicom-web/studies": qido_server(records, honour_offset=False)})
    facts, _ = timed(factory, HttpConfig(timeout=TIMEOUT, qido_page=3))
    (dw,) = facts.dicomweb
    assert dw.studies == 3 and dw.truncated


def test_qido_empty_and_protected() -> None:
    empty = FakeWeb(prefix_routes={"/dicom-web/studies": response(204)})
    facts, _ = timed(lambda: empty)
    (dw,) = facts.dicomweb
    assert dw.open and dw.studies == 0
    assert failures(facts) == {"HTTP-003": Severity.HIGH, "HTTP-006": Severity.MEDIUM}
    protected = FakeWeb(prefix_routes={"/dicom-web/": response(
        401, headers={"WWW-Authenticate": 'Basic realm="pacs"'})})
    facts, _ = timed(lambda: protected)
    (dw,) = facts.dicomweb
    assert dw.auth_required and not dw.open
    assert evaluate(facts)["HTTP-003"].status is Status.PASS


# --- product pages --------------------------------------------------------------------------


def test_dcm4chee_open_archive() -> None:
    records = [study(f"1.2.4.{i}", f"D{i % 2}", "SYNTH^DCM") for i in range(3)]
    routes = {
        "/dcm4chee-arc/aets": json_response([{"dicomAETitle": "DCM4CHEE"},
                                             {"dicomAETitle": "IOCM_REGULAR_USE"}]),
        "/dcm4chee-arc/ui2/": response(200, "<html><head><title>dcm4che</title>"
                                            "<base href='/dcm4chee-arc/ui2/'></head></html>"),
    }
    prefix = {"/dcm4chee-arc/aets/DCM4CHEE/rs/studies": qido_server(records),
              "/dcm4chee-arc/aets/IOCM_REGULAR_USE/rs/studies": qido_server([])}
    facts, _ = timed(lambda: FakeWeb(routes, prefix_routes=prefix))
    names = {p.name for p in facts.products}
    assert {"dcm4chee-arc", "dcm4chee-arc UI", "DICOMweb"} <= names
    web = {d.root: d for d in facts.open_dicomweb}
    assert web["/dcm4chee-arc/aets/DCM4CHEE/rs/"].studies == 3
    assert web["/dcm4chee-arc/aets/DCM4CHEE/rs/"].patients == 2
    assert web["/dcm4chee-arc/aets/IOCM_REGULAR_USE/rs/"].studies == 0
    assert failures(facts) == {"HTTP-001": Severity.CRITICAL, "HTTP-003": Severity.CRITICAL,
                               "HTTP-006": Severity.MEDIUM}


@pytest.mark.parametrize("page, product", [
    ("<html><head><title>OHIF Viewer</title><script src='/app-config.js'></script>", "OHIF Viewer"),
    ("<meta name='description' content='Open Health Imaging Foundation DICOM Viewer'>",
     "OHIF Viewer"),
    ("<html><title>MedDream DICOM Viewer</title>", "MedDream"),
    ("<title>Dicoogle Web</title>", "Dicoogle"),
])
def test_viewer_pages(page: str, product: str) -> None:
    facts, _ = timed(lambda: FakeWeb({"/": response(200, page)}))
    assert [p.name for p in facts.products] == [product]
    assert failures(facts) == {"HTTP-006": Severity.MEDIUM}


def test_orthanc_plugins_name_viewers() -> None:
    system = {"Version": "1.12.4", "DicomAet": "ORTHANC", "DicomPort": 4242, "Name": "X"}
    routes = {"/system": json_response(system),
              "/plugins": json_response(["dicom-web", "stone-webviewer", "ohif"]),
              "/statistics": json_response({"CountPatients": 0, "CountStudies": 0})}
    facts, _ = timed(lambda: FakeWeb(routes))
    assert {"Orthanc", "Stone Web Viewer", "OHIF Viewer"} <= {p.name for p in facts.products}
    # empty Orthanc without authentication: HIGH, not CRITICAL; 1.12.4 has no known CVE here
    assert failures(facts) == {"HTTP-001": Severity.HIGH, "HTTP-006": Severity.MEDIUM}
    assert evaluate(facts)["HTTP-005"].status is Status.PASS


# --- hostile directory listings -------------------------------------------------------------


def listing(links: list[str], title: str = "Index of /") -> bytes:
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><hr><pre>"
    body += "".join(f'<a href="{link}">{link[:20]}</a>   01-Jan-2024 00:00   -\n'
                    for link in links)
    return response(200, body + "</pre></body></html>")


def test_listing_links_cannot_escape() -> None:
    links = ["../", "http://127.0.0.2/x.dcm", "//127.0.0.2/y", "javascript:alert(1)",
             "mailto:a@b", "?C=N;O=D", "#top", "a%2Fb", "%00x", "ct.dcm", "sub/",
             "ct.dcm", "./sub/", "/sub/"]
    routes = {"/": listing(links), "/sub/": listing(["../", "/etc/", "/", "mr", "/sub/mr"]),
              "/ct.dcm": response(200, CT, content_type="application/dicom"),
              "/sub/mr": response(200, CT, content_type="application/octet-stream")}
    web = FakeWeb(routes)
    facts, _ = timed(lambda: web)
    assert facts.listing is not None
    asked = [p for p, _ in web.requests]
    assert not any(p.startswith(("/etc", "/x.dcm", "/y", "/a%2F", "/%00")) for p in asked)
    assert asked.count("/sub/") == 1 and asked.count("/sub/mr") == 1
    assert facts.listing.walk["dicom_files"] == 2
    assert facts.listing.walk["patients"] == 1
    assert failures(facts) == {"HTTP-004": Severity.CRITICAL}


def test_listing_that_never_ends() -> None:
    async def deep(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        writer.write(listing(["../", "./", "again/", "again/"], title=f"Index of {path}"))
        await writer.drain()
    wide = listing([f"f{i}.bin" for i in range(30_000)])
    cfg = HttpConfig(timeout=TIMEOUT, limits=ShareLimits(max_depth=4, max_entries=500,
                                                         max_files=50))
    facts, elapsed = timed(lambda: FakeWeb(prefix_routes={"/": deep}), cfg)
    assert facts.listing is not None
    assert "max_depth" in facts.listing.walk["limits_reached"]
    assert facts.listing.walk["directories"] == 5
    facts, elapsed = timed(lambda: FakeWeb({"/": wide}, default=response(200, b"x" * 500)), cfg)
    assert facts.listing is not None
    walk = facts.listing.walk
    assert walk["entries"] <= 500 and walk["files_sampled"] <= 50
    assert set(walk["limits_reached"]) & {"max_entries", "max_files"}
    assert elapsed < 20


def test_listing_server_without_range_support_sends_only_a_prefix() -> None:
    big = CT + b"\x00" * (4 << 20)
    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(big)}\r\n\r\n").encode()
    files = {f"/img{i}": endless(head, big, limit=len(big)) for i in range(3)}
    cfg = HttpConfig(timeout=TIMEOUT, limits=ShareLimits(sample_bytes=16384))
    web = FakeWeb({"/": listing(list(f[1:] for f in files)), **files})
    facts, _ = timed(lambda: web, cfg)
    assert facts.listing is not None
    walk = facts.listing.walk
    assert walk["dicom_files"] == 3 and walk["bytes_read"] <= 3 * 16384
    assert all(h.get("range") == "bytes=0-16383" for p, h in web.requests if p.startswith("/img"))


# --- pure helpers ---------------------------------------------------------------------------


def test_parse_listing_styles() -> None:
    apache = (b'<html><head><title>Index of /pacs</title></head><body><h1>Index of /pacs</h1>'
              b'<table><tr><th><a href="?C=N;O=D">Name</a></th></tr>'
              b'<tr><td><a href="/">Parent Directory</a></td></tr>'
              b'<tr><td><a href="2021/">2021/</a></td><td>-</td></tr>'
              b'<tr><td><a href="scan%20one.dcm">scan one.dcm</a></td><td>12K</td></tr>'
              b'<tr><td><a href="/pacs/abs.dcm">abs.dcm</a></td></tr></table>'
              b'<address>Apache/2.4.57 (Debian) Server</address></body></html>')
    entries = {e.name: e for e in parse_listing(apache, "/pacs/", 100)}
    assert set(entries) == {"2021", "scan one.dcm", "abs.dcm"}
    assert entries["2021"].is_dir and not entries["scan one.dcm"].is_dir
    assert is_listing(apache)
    nginx = (b'<html><head><title>Index of /</title></head><body><h1>Index of /</h1><hr><pre>'
             b'<a href="../">../</a>\n'
             b'<a href="a.dcm">a.dcm</a>                  01-Jan-2024 10:00              524288\n'
             b'<a href="d/">d/</a>                        01-Jan-2024 10:00                   -\n'
             b"</pre><hr></body></html>")
    entries = {e.name: e for e in parse_listing(nginx, "/", 100)}
    assert entries["a.dcm"].size == 524288 and entries["d"].is_dir and entries["d"].size is None
    pyserver = b'<title>Directory listing for /</title><ul><li><a href="x.dcm">x.dcm</a></li>'
    assert is_listing(pyserver) and [e.name for e in parse_listing(pyserver, "/", 10)] == ["x.dcm"]
    assert len(parse_listing(b"".join(b'<a href="f%d">' % i for i in range(1000)), "/", 7)) == 7


def test_page_title_and_json_helpers() -> None:
    assert page_title(b"<html><TITLE>\n  A &amp; B\n</TITLE>") == "A & B"
    assert page_title(b"<title>" + b"x" * 1000 + b"</title>") is None
    assert page_title(b"\xff\xfe<title>\xff ok</title>") == "\ufffd ok"
    assert parse_json(b"[" * 100_000) is None
    assert parse_json(json.dumps({"a": 1}).encode()) == {"a": 1}


def test_unreachable_facts_are_unknown_never_pass() -> None:
    facts = HttpFacts(Endpoint("127.0.0.1", 1, "http"), error="no HTTP answer: refused",
                      credentials_tried=True)
    outcomes = evaluate(facts)
    assert {k: o.status for k, o in outcomes.items()} == {k: Status.UNKNOWN for k in outcomes}


def test_default_credentials_one_attempt_only_on_the_identified_product() -> None:
    realm = {"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'}
    web = FakeWeb(default=response(401, headers=realm))
    facts, _ = timed(lambda: web, HttpConfig(timeout=TIMEOUT, try_default_credentials=True))
    with_auth = [p for p, h in web.requests if "authorization" in h]
    assert with_auth == ["/system"]
    assert [(c.product, c.accepted, c.status) for c in facts.credentials] == [
        ("Orthanc", False, 401)]
    assert evaluate(facts)["HTTP-002"].status is Status.PASS
    # a server that asks everyone for credentials but is not a known product: no attempt
    other = FakeWeb(default=response(401, headers={"WWW-Authenticate": 'Basic realm="x"'}))
    facts, _ = timed(lambda: other, HttpConfig(timeout=TIMEOUT, try_default_credentials=True))
    assert facts.credentials == () and facts.products == ()
    assert not any("authorization" in h for _, h in other.requests)
    assert failures(facts) == {}


def test_secured_dcm4chee_by_its_realm() -> None:
    bearer = {"WWW-Authenticate": 'Bearer realm="dcm4che"'}
    web = FakeWeb(prefix_routes={"/dcm4chee-arc/": response(401, headers=bearer)})
    facts, _ = timed(lambda: web)
    (arc,) = [p for p in facts.products if p.name == "dcm4chee-arc"]
    assert arc.auth_required
    (dw,) = facts.dicomweb
    assert dw.root == "/dcm4chee-arc/aets/DCM4CHEE/rs/" and dw.auth_required
    assert failures(facts) == {"HTTP-006": Severity.MEDIUM}


def test_pathological_html_is_parsed_in_linear_time() -> None:
    for blob in (b"<a " * 1_000_000, b'<a href="' * 500_000, b"<title" * 500_000,
                 (b'<a href="x">x</a>' * 200_000), b"href" * 1_000_000, b"<a href" * 500_000):
        start = time.monotonic()
        parse_listing(blob, "/", 50_000)
        page_title(blob)
        is_listing(blob)
        assert time.monotonic() - start < 3.0


# --- redirects from the root -----------------------------------------------------------------


def test_root_redirect_within_the_endpoint_is_followed_once() -> None:
    # nginx-style "return 302 /viewer/": the viewer is found on the page it lands on
    routes = {"/": response(302, "", headers={"Location": "/viewer/"}),
              "/viewer/": response(200, "<html><title>OHIF Viewer</title></html>")}
    web = FakeWeb(routes)
    facts, _ = timed(lambda: web)
    assert [(p.name, p.path) for p in facts.products] == [("OHIF Viewer", "/viewer/")]
    assert facts.landing == "/viewer/" and facts.summary()["landing"] == "/viewer/"
    assert [p for p, _ in web.requests].count("/viewer/") == 1


def test_root_redirect_to_a_listing_walks_it() -> None:
    base = "http://127.0.0.1:{port}/data/"

    async def root(writer: asyncio.StreamWriter, path: str, headers: dict[str, str]) -> None:
        port = writer.get_extra_info("sockname")[1]
        writer.write(response(301, "", headers={"Location": base.format(port=port)}))
        await writer.drain()

    routes = {"/": root, "/data/": listing(["ct.dcm", "notes.txt"], title="Index of /data/"),
              "/data/ct.dcm": response(200, CT, content_type="application/dicom"),
              "/data/notes.txt": response(200, "nothing", content_type="text/plain")}
    facts, _ = timed(lambda: FakeWeb(routes))
    assert facts.listing is not None and facts.listing.path == "/data/"
    assert facts.listing.walk["dicom_files"] == 1
    assert failures(facts)["HTTP-004"] == Severity.CRITICAL


@pytest.mark.parametrize("location", [
    "http://127.0.0.2/", "//127.0.0.2/x", "https://127.0.0.1/", "http://example.org/",
    "javascript:alert(1)", "/a\\\\b", "http://127.0.0.1:1/"])
def test_root_redirect_off_the_endpoint_is_not_followed(location: str) -> None:
    web = FakeWeb({"/": response(302, "", headers={"Location": location})})
    facts, _ = timed(lambda: web)
    assert facts.landing is None
    asked = {p for p, _ in web.requests}
    assert not any(p.startswith(("/x", "/a")) for p in asked)
