"""What a person does in the add-on's UCC pages, as steps for the browser tests (selectors from UCC's markup)."""

import os
import re
from typing import Optional

from harness.webdriver import Browser

MODAL = "[data-test=modal]"
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".tmp", "ui")


class UccPage:
    def __init__(self, browser: Browser, web, test_name: str):
        self.browser = browser
        self.web = web
        self.test_name = re.sub(r"[^\w]+", "_", test_name)
        self._shots = 0

    def shot(self, step: str) -> str:
        """A screenshot of this step in .tmp/ui/ (the run's output folder, not committed)."""
        self._shots += 1
        path = os.path.join(SCREENSHOTS, f"{self.test_name}-{self._shots:02d}-{step}.png")
        self.browser.screenshot(path)
        return path

    def open(self, view: str, tab: Optional[str] = None) -> None:
        self.browser.get(self.web.page_url(view))
        if view == "inputs":
            self.browser.find_text("button", "Create New Input")
        else:
            self.browser.find_visible("[data-test=ucc-credit]")
        if tab:
            self.browser.click(self.browser.find_text("[role=tab], [data-test=tab]", tab))

    def wait_for_row(self, name: str) -> str:
        return self.browser.find_text("tbody td, [data-test=cell]", name)

    def row_cell_texts(self, name: str) -> str:
        return self.browser.execute(
            "const cells = Array.from(document.querySelectorAll('tbody tr')).find("
            "r => Array.from(r.cells).some(c => c.innerText.trim() === arguments[0]));"
            "return cells ? cells.innerText : '';",
            name,
        )

    def click_button(self, label: str, scope: str = "") -> None:
        self.browser.click(self.browser.find_text(f"{scope} button".strip(), label))

    def fill(self, field: str, value: str) -> None:
        self.browser.type(
            self.browser.find_visible(f"{MODAL} [data-name={field}] input, [data-name={field}] input"), value
        )

    def field_value(self, field: str) -> str:
        element = self.browser.find_visible(f"{MODAL} [data-name={field}] input, [data-name={field}] input")
        return self.browser.attribute(element, "value") or ""

    def select(self, field: str, label: str) -> None:
        self.browser.click(
            self.browser.find_visible(
                f"[data-name={field}] button[data-test=select], [data-name={field}] [role=combobox]"
            )
        )
        self.browser.click(self.browser.find_text("[data-test=option], [role=option]", label))

    def modal_text(self) -> str:
        return self.browser.execute(
            "const m = document.querySelector(arguments[0]); return m ? m.innerText : '';", MODAL
        )

    def wait_for_modal_message(self, needle: str, timeout: float = 60) -> str:
        try:
            return self.browser.wait_for(
                lambda: needle in self.modal_text() and self.modal_text(), f"{needle!r} in the dialog", timeout
            )
        except AssertionError:
            self.shot("message-missing")
            raise AssertionError(f"{needle!r} did not appear; the dialog shows: {self.modal_text()!r}") from None

    def wait_until_modal_closed(self, timeout: float = 60) -> None:
        try:
            self.browser.wait_for(lambda: not self.browser.find_all(MODAL), "the dialog to close", timeout)
        except AssertionError:
            self.shot("dialog-still-open")
            raise AssertionError(f"the dialog stayed open, showing: {self.modal_text()!r}") from None

    def edit_row(self, name: str) -> None:
        self._row_action(name, "Edit")

    def delete_row(self, name: str) -> None:
        """Delete the row's item, confirm, and wait until the table no longer lists it."""
        self._row_action(name, "Delete")
        self.click_button("Delete", "[data-test=modal] [data-test=footer]")
        self.wait_until_modal_closed()
        self.browser.wait_for(
            lambda: not self.browser.find_all("tbody tr td") or name not in self.page_rows(), "the row to go"
        )

    def _row_action(self, name: str, label: str) -> None:
        script = (
            "const row = Array.from(document.querySelectorAll('tbody tr')).find("
            "r => Array.from(r.cells).some(c => c.innerText.trim() === arguments[0]));"
            "return row ? Array.from(row.querySelectorAll('button')).find("
            "b => (b.getAttribute('aria-label') || b.innerText || '').trim().toLowerCase().startsWith("
            "arguments[1].toLowerCase())) || null : null;"
        )
        element = self.browser.wait_for(lambda: self.browser.execute(script, name, label), f"{label} of row {name}")
        self.browser.click(element["element-6066-11e4-a52e-4f735466cecf"])
        self.browser.find_visible(MODAL)

    def set_checkbox(self, field: str, on: bool) -> None:
        box = self.browser.find_visible(f"[data-name={field}] [role=checkbox], [data-name={field}] button")
        if (self.browser.attribute(box, "ariaChecked") == "true") != on:
            self.browser.click(box)

    def expand_group(self, label: str) -> None:
        """Open a collapsed section of the form (UCC's expandable groups)."""
        self.browser.click(self.browser.find_text(f"{MODAL} [data-test=title], {MODAL} span, {MODAL} button", label))

    def toggle_row_status(self, name: str) -> None:
        script = (
            "const row = Array.from(document.querySelectorAll('tbody tr')).find("
            "r => Array.from(r.cells).some(c => c.innerText.trim() === arguments[0]));"
            "return row ? row.querySelector('[data-test=switch] button, button[role=switch], [role=switch]') : null;"
        )
        element = self.browser.wait_for(lambda: self.browser.execute(script, name), f"the status switch of {name}")
        self.browser.click(element["element-6066-11e4-a52e-4f735466cecf"])

    def page_rows(self) -> str:
        return self.browser.execute(
            "return Array.from(document.querySelectorAll('tbody tr')).map(r => r.innerText).join('\\n');"
        )
