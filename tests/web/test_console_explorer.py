"""The request explorer in headless Chromium against a real `trimtab serve`: filter, sort,
search the bodies, scroll on by cursor, open one, load a large body whole, read its
guardrails and add it to a dataset."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.support import ADMIN_KEY, APP_KEY, OPERATOR_KEY, VIEWER_KEY, auth
from tests.web.conftest import SignIn
from tests.web.screenshots import shot
from tests.web.support import LONG_QUESTION, Console, chat


def test_filter_requests_sort_and_open_one(sign_in: SignIn, shots: Path) -> None:
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/requests")
    form = page.get_by_test_id("request-filters")
    form.get_by_label("Route").fill("web-answer")
    form.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/requests\?.*route=web-answer"))
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(8)
    for text in rows.locator("td:nth-child(4)").all_inner_texts():
        assert text.startswith("web-answer"), text
    page.get_by_role("button", name="Latency").click()  # the column sorts, by keyboard too
    expect(page.locator("th[aria-sort=ascending]")).to_have_text("Latency")
    page.keyboard.press("Enter")  # focus stays on the header's button: sorts the other way
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Latency")
    rows.first.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Request req_")
    expect(page.get_by_test_id("conversation")).to_contain_text("Can I return shoes?")
    expect(page.get_by_test_id("conversation")).to_contain_text("You answer questions about")
    expect(page.get_by_test_id("answer")).not_to_be_empty()
    expect(page.get_by_test_id("request-facts")).to_contain_text("web-answer")
    shot(page, shots, "request")


def test_the_explorer_searches_the_bodies(sign_in: SignIn, console: Console) -> None:
    api = httpx.get(
        console.url + "/api/requests", params={"q": "RETURN SHOES", "limit": 200},
        headers=auth(OPERATOR_KEY),
    ).json()["data"]  # fmt: skip
    assert api
    page = sign_in(OPERATOR_KEY)
    page.goto("/ui/requests")
    form = page.get_by_test_id("request-filters")
    form.get_by_label("Text").fill("RETURN SHOES")
    form.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/ui/requests\?q=RETURN\+SHOES"))
    rows = page.get_by_test_id("requests").locator("tbody tr")
    expect(rows).to_have_count(len(api))
    assert rows.locator("td:nth-child(2)").all_inner_texts() == [r["id"] for r in api]
    page.goto("/ui/requests?q=no+such+words+anywhere")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_text("No requests match.")


def test_a_large_body_is_cut_with_a_link_to_load_it_whole(sign_in: SignIn) -> None:
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/requests?user=long")
    page.get_by_test_id("requests").locator("tbody tr a").first.click()
    request_body = page.locator("details").first
    request_body.locator("summary").click()
    cut = request_body.locator("pre.body").inner_text()
    assert len(cut) < len(LONG_QUESTION)
    request_body.get_by_test_id("load-whole").click()
    expect(page).to_have_url(re.compile(r"whole=1"))
    page.locator("details").first.locator("summary").click()
    assert LONG_QUESTION.strip() in page.locator("details").first.locator("pre.body").inner_text()


def test_the_explorer_scrolls_on_by_cursor(sign_in: SignIn, console: Console) -> None:
    everything = httpx.get(
        console.url + "/api/requests?limit=200&tenant=acme", headers=auth(ADMIN_KEY)
    ).json()["data"]
    page = sign_in(ADMIN_KEY)
    page.goto("/ui/requests?tenant=acme&limit=4")
    rows = page.get_by_test_id("requests").locator("tbody tr")
    # each scroll to the end appends the next page; the count is read once a turn, as a
    # page can land between two reads (it did: the second read saw the last page)
    while (before := rows.count()) < len(everything):
        page.mouse.wheel(0, 100_000)
        expect(rows).not_to_have_count(before)
    expect(rows).to_have_count(len(everything))  # every page appended, newest first
    expect(page.get_by_test_id("next-page")).to_have_count(0)
    shown = rows.locator("td:nth-child(2)").all_inner_texts()
    assert shown == [r["id"] for r in everything]
    assert "GMT+9" in rows.last.locator("time").inner_text()  # appended rows in local time


GUARDED = """
routes:
  guarded-answer:
    owner: web@acme.example
    risk_tier: 0
    version:
      model: gpt-mock
      messages:
        - role: user
          content: "{{question}}"
      guardrails:
        mode: enforce
        input:
          pii: {action: redact, entities: [email]}
"""


def test_a_requests_guardrails_and_add_it_to_a_dataset(
    sign_in: SignIn, console: Console, shots: Path
) -> None:
    applied = httpx.post(
        console.url + "/api/routes/apply", headers=auth(OPERATOR_KEY),
        json={"yaml": GUARDED, "message": "a guarded route"},
    )  # fmt: skip
    assert applied.status_code == 200, applied.text
    question = {"question": "Write to me at jo@example.com about my order"}
    sent = chat(console.url, APP_KEY, "route:guarded-answer", "hi", variables=question)
    assert sent.status_code == 200, sent.text
    found = httpx.get(
        console.url + "/api/requests?route=guarded-answer", headers=auth(OPERATOR_KEY)
    ).json()["data"]
    rid = found[0]["id"]
    viewer = sign_in(VIEWER_KEY)
    viewer.goto(f"/ui/requests/{rid}")
    expect(viewer.get_by_test_id("guardrails")).to_contain_text("input.pii")
    expect(viewer.get_by_test_id("add-to-dataset")).to_have_count(0)  # operators only
    page = sign_in(OPERATOR_KEY)
    page.goto(f"/ui/requests/{rid}")
    expect(page.get_by_test_id("guardrails-summary")).to_contain_text("fired: input.pii")
    pii = page.get_by_test_id("guardrails").locator("tr", has_text="input.pii")
    expect(pii).to_contain_text("redact")
    form = page.get_by_test_id("add-to-dataset")
    form.get_by_label("Dataset").fill("from-console")
    form.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_test_id("added")).to_have_text("Added to dataset from-console as v1.")
    page.get_by_test_id("guardrails").scroll_into_view_if_needed()
    shot(page, shots, "request-guardrails")
    version = httpx.get(
        console.url + "/api/datasets/from-console/versions/1", headers=auth(OPERATOR_KEY)
    )
    assert version.status_code == 200, version.text
    (item,) = version.json()["data"]
    assert item["metadata"]["request_id"] == rid and item["metadata"]["route"] == "guarded-answer"
    # the body as stored: the guardrail redacted the address before it was recorded
    assert item["variables"] == {"question": "Write to me at <EMAIL_1> about my order"}
    form = page.get_by_test_id("add-to-dataset")  # the same input again: nothing new
    form.get_by_label("Dataset").fill("from-console")
    form.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_test_id("added")).to_contain_text("Already in dataset from-console")
    audit = httpx.get(
        console.url + "/api/audit?action=dataset.push", headers=auth(ADMIN_KEY)
    ).json()["data"]
    assert any(e["actor"] == "ml@acme" and "from-console" in (e["target"] or "") for e in audit)
