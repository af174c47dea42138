"""Every route that serves content rather than JSON says its type once and its charset at most once (issue 10:
CSV downloads and chart pages said ``charset=utf-8`` twice, and a Windows-1252 original claimed UTF-8).

The routes are found in the functions' own routers (a handler that builds its response itself), so a new
content route fails here until it is scanned too.
"""

from __future__ import annotations

import inspect
import re

from local_emulator.server import load_function_apps
from tests.documents import pdf_with_text
from tests.function_routers import router_of

PEOPLE_CP1252 = "name,city\nJosé,München\nRené,Zürich\n".encode("cp1252")
_BUILDS_ITS_RESPONSE = re.compile(r"\bsend_\w+\(|Response\(")


def content_routes() -> set[tuple[str, str]]:
    """(function, rule) of every route whose handler builds its own response instead of returning JSON."""
    found = set()
    for name, app in load_function_apps().items():
        router = router_of(app)
        for rule in router._map.iter_rules():
            if _BUILDS_ITS_RESPONSE.search(inspect.getsource(router._handlers[rule.endpoint].handler)):
                found.add((name, rule.rule))
    return found


def _served(pipeline, analyst) -> dict[tuple[str, str], list]:
    """One real answer from each content route (several where one route serves several types), by route."""

    def call(*args, **kwargs):
        response = pipeline.call(*args, **kwargs)
        response.get_data()  # read whole and closed, as a client would: a download holds its slot until then
        response.close()
        return response

    pipeline.upload("sales")
    pipeline.upload("sales", name="people.csv", content=PEOPLE_CP1252)
    pipeline.upload("sales", name="report.pdf", content=pdf_with_text(["Revenue grew 12 percent"]))
    submitted = pipeline.ask("Compare revenue by region")
    assert pipeline.wait(submitted["query_id"])["status"] == "succeeded"
    session_id = submitted["session_id"]
    chart_id = call("GET", f"/api/v1/charts?session_id={session_id}").get_json()["items"][0]["chart_id"]
    chart_urls = [call("GET", f"/api/v1/charts/{chart_id}/url?format={fmt}").get_json()["url"]
                  for fmt in ("html", "png", "svg")]
    legacy_answer = call("POST", "/query", json={"domain": "sales", "prompt": "Compare revenue by region",
                                                 "session_id": "content-types", "userId": "alice",
                                                 "provider": "SCRIPTED", "model": "scripted/model"}).get_json()
    signed_csv = next(item["signed_url"] for item in call("GET", "/datasets?domain=sales").get_json()["datasets"]
                      if item["filename"] == "sales.csv")
    dataset = "/api/v1/datasets/sales/{}?format={}"
    return {
        ("datasets", "/api/v1/datasets/<domain>/<path:name>"): [
            call("GET", dataset.format(name, fmt)) for name, fmt in [
                ("sales.csv", "csv"), ("sales.csv", "json"), ("sales.csv", "parquet"), ("sales.csv", "original"),
                ("people.csv", "original"), ("report.pdf", "original")]],
        ("legacy", "/datasets/<domain>/<path:filename>"): [call("GET", "/datasets/sales/sales.csv?as=csv"),
                                                           call("GET", "/datasets/sales/report.pdf")],
        ("legacy", "/files/datasets/<user_id>/<domain>/<path:filename>"): [call("GET", signed_csv, user="")],
        ("charts", "/api/v1/charts/<chart_id>/<content>"): [call("GET", url, user="") for url in chart_urls],
        ("legacy", "/charts/<namespace>/<filename>"): [call("GET", legacy_answer["chart_url"], user="")],
        ("queries", "/api/v1/queries/<query_id>/events"): [call("GET", submitted["events_url"])],
        ("queries", "/api/v1/queries/<query_id>/result"): [
            call("GET", f"/api/v1/queries/{submitted['query_id']}/result?format={fmt}")
            for fmt in ("csv", "xlsx", "parquet")],
        ("datasets", "/api/v1/domains/<domain>/sql"): [
            call("POST", "/api/v1/domains/sales/sql?format=csv", json={"sql": "SELECT * FROM sales"})],
        ("sessions", "/api/v1/sessions/<session_id>/export"): [
            call("POST", f"/api/v1/sessions/{session_id}/export")],
        ("legacy", "/sessions/<session_id>/export/pdf"): [call("GET", f"/sessions/{session_id}/export/pdf")],
    }


def test_every_content_route_says_its_type_once_and_its_charset_at_most_once(pipeline, analyst):
    served = _served(pipeline, analyst)
    assert set(served) == content_routes(), "a content route is not scanned here (or no longer exists)"
    types = []
    for route, responses in served.items():
        for response in responses:
            assert response.status_code == 200, (route, response.get_data()[:300])
            declared = response.headers.getlist("Content-Type")
            assert len(declared) == 1 and declared[0].count("charset=") <= 1, (route, declared)
            if declared[0].startswith("text/"):
                assert "charset=" in declared[0], (route, declared)  # text without a charset is a guess
            types.append(declared[0])
    # Two dataset downloads, a UTF-8 original, the signed link, two result downloads.
    assert types.count("text/csv; charset=utf-8") == 6
    assert "text/csv; charset=windows-1252" in types  # the original of a cp1252 file, as it was read
    assert {"application/json", "application/vnd.apache.parquet", "application/pdf", "image/png",
            "text/html; charset=utf-8", "text/event-stream; charset=utf-8"} <= set(types)
