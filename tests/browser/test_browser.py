"""The workbook in a real browser: JupyterLab runs the token notebook, a person fills the form.

Runs notebooks/03-token.ipynb top to bottom in JupyterLab (Chromium), types the client key in
the token form, clicks "Request token", and waits for responseCode 2007300 in the form's
output area. Saves test-artifacts/browser-token.png, checks that no secret reached the page,
then tries an unknown client key and expects the refusal's code and hint in the form.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from snapbook.examples import load_vendor_example
from snapbook.keys import private_key_bytes

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.browser

def test_token_form_in_jupyterlab(lab, page, no_secret_on_page):
    page.goto(lab.page_url("03-token.ipynb"))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    lab.wait_for_kernel_idle(page, 90_000)

    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    button = page.locator("button", has_text="Request token")
    button.wait_for(state="visible", timeout=120_000)
    lab.wait_for_kernel_idle(page, 120_000)

    form = page.locator(".widget-vbox", has=button).last
    output = form.locator(".widget-output")
    assert "2007300" not in output.inner_text(), "the form must start empty: the click is what we test"

    # Fill the form as a person would: the client key field, then the button.
    client_key = form.locator(".widget-text", has_text="X-CLIENT-KEY").locator("input")
    client_key.fill("")
    client_key.type("MCP00000001")
    client_key.press("Tab")
    button.scroll_into_view_if_needed()
    button.click()

    output.filter(has_text="2007300").wait_for(timeout=60_000)
    text = output.inner_text()
    assert "2007300 Successful" in text
    assert "Time left: 900 s" in text
    assert "MCP00000001" in text  # the decoded claims (sub)

    ARTIFACTS.mkdir(exist_ok=True)
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser-token.png"))

    # No secret reached the page: no private key, no full signature, no full token.
    example = load_vendor_example()
    no_secret_on_page(page, known_secrets=[
        example.signature, example.documented_signature, example.documented_access_token,
        *private_key_bytes(example.private_key).decode().splitlines()[1:-1],
    ])

    # A refusal shows in the same place, with its meaning and hint, never as a traceback.
    client_key.fill("MCP99999999")
    client_key.press("Tab")
    button.click()
    output.filter(has_text="4017300").wait_for(timeout=60_000)
    text = output.inner_text()
    assert "Unknown client" in text and "Hint:" in text and "Traceback" not in text
