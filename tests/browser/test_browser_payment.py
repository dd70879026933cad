"""The first payment in a real browser: the payment form clicked in JupyterLab and in Voila's demo.

Notebook 07 (notebooks/07-first-payment.ipynb) ends with the payment form. In JupyterLab the test
runs every cell; in Voila (what the README's one-click demo opens on Binder) the page runs them
itself and shows no code. In both, as a person would: "Generate QR" shows the QR as an image,
"Pay in the sandbox" turns the status line to Success when the verified notification arrives,
"Check status" keeps it there. Screenshots go to test-artifacts/browser-payment-*.png; no secret
and no traceback may reach the page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from snapbook.examples import load_vendor_example
from snapbook.keys import private_key_bytes

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "07-first-payment.ipynb"

pytestmark = pytest.mark.browser

# Every code cell shows an execution count ("[7]:"), or a cell failed (run-all stops there).
ALL_CELLS_RAN_OR_FAILED = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
  const failed = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
    .some(o => o.textContent.includes('Traceback'));
  return failed || (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
}"""

# The form is the VBox whose own child is the status line (PaymentForm's layout).
FORM = ".widget-vbox:has(> .snapbook-payment-status)"


def _vendor_secrets() -> list[str]:
    example = load_vendor_example()
    return [example.signature, example.documented_signature, example.documented_access_token,
            *private_key_bytes(example.private_key).decode().splitlines()[1:-1]]


def _pay_with_the_form(page: Any, screenshot: str) -> None:
    """Generate, see the QR image, pay, see Success and "verified" (screenshot), check status."""
    form = page.locator(FORM).first
    generate = form.locator("button", has_text="Generate QR")
    generate.wait_for(state="visible", timeout=180_000)
    status = form.locator(".snapbook-payment-status")
    qr_image = form.locator(".snapbook-qr svg, .snapbook-qr img").first
    assert qr_image.count() == 0 and not status.inner_text().startswith("Success"), \
        "the form must start with no QR: the clicks are what we test"

    generate.scroll_into_view_if_needed()
    generate.click()
    qr_image.wait_for(state="visible", timeout=60_000)
    box = qr_image.bounding_box()
    assert box and box["width"] >= 80 and box["height"] >= 80, f"a QR too small to scan: {box}"
    expect(status).not_to_have_text(re.compile(r"^\s*Success"))

    pay = form.locator("button", has_text="Pay in the sandbox")
    expect(pay).to_be_enabled(timeout=30_000)
    pay.click()
    expect(status).to_have_text(re.compile(r"^\s*Success"), timeout=60_000)
    expect(form).to_contain_text("verified", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)

    # The provider's own view agrees; an answer crossing the notification never undoes Success.
    form.locator("button", has_text="Check status").click()
    page.wait_for_timeout(1_000)
    expect(status).to_have_text(re.compile(r"^\s*Success"), timeout=30_000)


def _assert_a_clean_page(page: Any) -> None:
    text = page.inner_text("body")
    assert "Traceback" not in text
    assert "There was an error when executing cell" not in text  # Voila's stand-in for a traceback


def test_payment_form_in_jupyterlab(lab, page, no_secret_on_page):
    page.goto(lab.page_url(NOTEBOOK))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    lab.wait_for_kernel_idle(page, 90_000)

    # Saved outputs and widget state show the form before anything runs: clear them, so that the
    # form clicked below is the one this run made, then run every cell.
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_CELLS_RAN_OR_FAILED, timeout=240_000)
    lab.wait_for_kernel_idle(page, 60_000)
    failed = page.locator(".jp-Notebook .jp-OutputArea-output", has_text="Traceback")
    assert failed.count() == 0, failed.first.inner_text()[-2000:]
    # textContent: JupyterLab leaves cells out of view unrendered (content-visibility), innerText empty.
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_text_contents()
    assert prompts and all(re.search(r"\[\d+\]", p) for p in prompts), f"not every cell ran: {prompts}"

    _pay_with_the_form(page, "browser-payment-lab.png")
    _assert_a_clean_page(page)
    no_secret_on_page(page, known_secrets=_vendor_secrets())


def _code_lines_not_in_markdown(notebook: Path) -> list[str]:
    """Distinctive lines of the notebook's code: shown on the page only if code cells were."""
    cells = json.loads(notebook.read_text())["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            line = line.strip()
            if len(line) >= 20 and not line.startswith("#") and line not in prose:
                lines.append(line)
    return lines


def test_payment_form_in_the_voila_demo(lab, page, no_secret_on_page):
    """The one-click demo: Voila runs the notebook and shows the form, no code; same clicks, same result."""
    response = page.goto(lab.voila_url(NOTEBOOK), timeout=240_000)
    assert response is not None and response.status == 200
    page.wait_for_function("() => document.querySelector('.jp-Notebook') !== null", timeout=240_000)

    _pay_with_the_form(page, "browser-payment-voila.png")

    # An app, not a notebook: no code cell shows its input, and no line of code is on the page.
    assert page.locator(".jp-CodeCell").count() > 0, "Voila's page lists the notebook's cells"
    for hidden in (".jp-CodeCell .jp-InputArea", ".jp-InputArea-editor", ".cm-editor", ".CodeMirror"):
        shown = [el for el in page.locator(hidden).all() if el.is_visible()]
        assert not shown, f"{hidden}: {len(shown)} visible"
    text = page.inner_text("body")
    code = _code_lines_not_in_markdown(ROOT / "notebooks" / NOTEBOOK)
    assert code, "the notebook has code to hide"
    assert [line for line in code if line in text] == []
    _assert_a_clean_page(page)
    no_secret_on_page(page, known_secrets=_vendor_secrets())
