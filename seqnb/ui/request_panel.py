"""The request panel: compose one request or a sweep; nothing invalid or over budget can leave.

State lives in the widgets; every action is a plain method (``request``, ``check``, ``apply_fix``,
``roll_seed``, ``submit``, ``plan``, ``sweep``, ``load_references``, ``reference_list``) that a button merely calls,
and that tests call too. An edit-sequential model shows a references box (one URL per line) and
their thumbnails, fetched kernel-side through the image cache into one HTML widget, and an upload
button beside it whose images go inline (``reference_uploads``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import ipywidgets as w

from .._loop import LoopRunner
from ..client.sweep import Sweep
from ..client.sync import Client, Run
from ..errors import SeqnbError
from ..images.references import check_references
from ..model.pricing import format_money
from ..model.request import Request
from ..model.seeds import fresh_seed
from ..model.spec import get_model, models
from ..model.sweep import SweepPlan
from ..model.validation import Fix, Problem, Report
from .closing import close_tree
from .matrix_state import data_url
from .reference_uploads import ReferenceUploads

__all__ = ["RequestPanel", "parse_seeds"]

_DEFAULT_MODEL = "seedream-4.5"
_THUMB = 96


def parse_seeds(text: str) -> list[int]:
    """``"1, 2, 5-8"`` -> [1, 2, 5, 6, 7, 8]; raises ValueError with the bad part."""
    seeds: list[int] = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-") if not part.startswith("-") else (part, "", "")
        try:
            if sep:
                start, end = int(lo), int(hi)
                if end < start or end - start > 999:
                    raise ValueError
                seeds.extend(range(start, end + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"seeds: {part!r} is not a number or a range like 1-5") from None
    return seeds


def _refusal(exc: Exception) -> str:
    """A refusal of the client's, as the panel's message says it: whole, each of its lines kept."""
    return f"<span style='color:#b00020'>{html.escape(str(exc)).replace(chr(10), '<br>')}</span>"


class _ProblemRow:
    """One problem next to the fields, with its one-click fixes: a fixed set of widgets whose values change."""

    def __init__(self, apply: Callable[[Fix], None]) -> None:
        self.apply = apply
        self.text = w.HTML(layout=w.Layout(flex="1 1 auto"))  # the message wraps; the fix buttons keep their width
        self.buttons: list[w.Button] = []
        self.fixes: tuple[Fix, ...] = ()
        self.box = w.HBox([self.text], layout=w.Layout(align_items="center"))

    def _button(self, index: int) -> w.Button:
        button = w.Button(layout=w.Layout(width="auto", flex="0 0 auto"))  # never squeezed to "set count t…"
        button.on_click(lambda _: self.apply(self.fixes[index]))
        return button

    def show(self, problem: Problem) -> w.HBox:
        colour = "#b00020" if problem.severity == "error" else "#8a6d00"
        self.text.value = f"<span style='color:{colour}'><b>{problem.field}</b>: {html.escape(problem.message)}</span>"
        self.fixes = problem.fixes
        while len(self.buttons) < len(self.fixes):
            self.buttons.append(self._button(len(self.buttons)))
        for button, fix in zip(self.buttons, self.fixes, strict=False):
            button.description = fix.label  # whole: the button is as wide as its label
            button.tooltip = fix.label
        children = (self.text, *self.buttons[: len(self.fixes)])
        if children != self.box.children:
            self.box.children = children
        return self.box


class RequestPanel(w.VBox):
    """Compose a request for one model (or a sweep), see every problem as you type, and send it."""

    def __init__(self, client: Client, *, on_sent: Any = None) -> None:
        self.client = client
        self.on_sent = on_sent
        self.last_report: Report | None = None
        self.last_plan: SweepPlan | None = None
        self.message = w.HTML()

        names = [m.short_name for m in models()]
        default = _DEFAULT_MODEL if _DEFAULT_MODEL in names else names[-1]
        self.model = w.Dropdown(options=names, value=default, description="Model")
        self.prompt = w.Textarea(
            value="Generate 3 images of a lighthouse keeper's day, from dawn to night",
            description="Prompt",
            layout=w.Layout(width="100%", height="80px"),
            continuous_update=True,
        )
        self.counter = w.HTML()
        self.references = w.Textarea(
            placeholder="one reference image URL per line (public https)",
            description="References",
            layout=w.Layout(width="auto", flex="1 1 auto", height="60px"),
            continuous_update=False,
        )
        self.reference_thumbs = w.HTML()
        self.uploads = ReferenceUploads(client.references, on_change=self.check)
        self.reference_box = w.VBox(
            [
                w.HBox([self.references, self.uploads.button], layout=w.Layout(align_items="flex-start")),
                self.uploads.tiles,
                self.uploads.notes,
                self.reference_thumbs,
            ],
            layout=w.Layout(display="none"),
        )
        self.count = w.BoundedIntText(
            value=3, min=1, max=15, description="Count", tooltip="count: how many images the series has (1-15)"
        )  # "count", as every problem and fix calls it
        self.size = w.Dropdown(description="Size")
        self.optimize = w.ToggleButtons(options=["fast", "standard"], description="Optimize")
        self.seed = w.IntText(value=1, description="Seed")
        self.dice = w.Button(description="🎲", tooltip="roll a new seed", layout=w.Layout(width="44px"))
        self.lock = w.Checkbox(value=False, description="lock seed", indent=False)
        self.problems = w.VBox()
        self._problem_rows: list[_ProblemRow] = []  # reused from keystroke to keystroke, never replaced
        self.cost = w.HTML()
        self.submit_button = w.Button(description="Submit", button_style="primary", icon="paper-plane")

        self.sweep_mode = w.Checkbox(value=False, description="Sweep", indent=False)
        self.sweep_prompts = w.Textarea(
            placeholder="one prompt per line", description="Prompts", layout=w.Layout(width="100%")
        )
        self.sweep_seeds = w.Text(value="1-3", description="Seeds")
        self.sweep_sizes = w.SelectMultiple(description="Sizes", rows=4)
        self.sweep_models = w.SelectMultiple(options=names, value=[default], description="Models", rows=2)
        self.budget = w.Text(value="5.00", description="Budget")
        self.sweep_summary = w.HTML()
        self.sweep_button = w.Button(description="Run sweep", button_style="warning", icon="th")
        self.sweep_box = w.VBox(
            [
                self.sweep_prompts,
                w.HBox([self.sweep_seeds, self.budget]),
                w.HBox([self.sweep_models, self.sweep_sizes]),
                self.sweep_summary,
                self.sweep_button,
            ],
            layout=w.Layout(display="none"),
        )

        self.dice.on_click(lambda _: self.roll_seed())
        self.submit_button.on_click(lambda _: self.submit())
        self.sweep_button.on_click(lambda _: self.sweep())
        fields = (self.prompt, self.count, self.size, self.optimize, self.seed, self.references, self.sweep_mode)
        sweep_fields = (self.sweep_prompts, self.sweep_seeds, self.sweep_sizes, self.sweep_models, self.budget)
        for widget in (*fields, *sweep_fields):
            widget.observe(lambda _: self.check(), "value")
        self.references.observe(lambda _: LoopRunner().spawn(self.load_references()), "value")
        self.model.observe(lambda _: self._model_changed(), "value")
        self.sweep_mode.observe(
            lambda c: setattr(self.sweep_box.layout, "display", "" if c["new"] else "none"), "value"
        )

        super().__init__(
            [
                self.model,
                self.prompt,
                self.counter,
                self.reference_box,
                w.HBox([self.count, self.size]),
                self.optimize,
                w.HBox([self.seed, self.dice, self.lock]),
                self.problems,
                w.HBox([self.cost, self.submit_button]),
                self.sweep_mode,
                self.sweep_box,
                self.message,
            ]
        )
        self._model_changed()

    def close(self) -> None:
        """Close the panel and every widget it made (problem rows not on screen included)."""
        close_tree([*self.children, *(row.box for row in self._problem_rows), *self.uploads.widgets()])
        super().close()

    # --- state -> request ---------------------------------------------------------------------

    def _model_changed(self) -> None:
        spec = get_model(self.model.value)
        sizes = list(spec.sizes)
        keep = self.size.value if self.size.value in sizes else spec.default("size")
        self.size.options = sizes
        self.size.value = keep
        self.optimize.layout.display = "" if spec.role("optimize") else "none"
        self.reference_box.layout.display = "" if spec.role("references") else "none"
        union = sorted({s for name in self.sweep_models.value for s in get_model(name).sizes} or sizes)
        self.sweep_sizes.options = union
        self.check()

    def request(self) -> Request:
        """The request the fields describe."""
        spec = get_model(self.model.value)
        options: dict[str, Any] = {}
        if spec.role("optimize"):
            options["optimize"] = self.optimize.value
        if spec.role("references"):
            options["references"] = self.reference_list()
        return Request(
            spec, self.prompt.value, count=self.count.value, size=self.size.value, seed=self.seed.value, **options
        )

    def reference_urls(self) -> list[str]:
        """The references box, one URL per line (blank lines skipped)."""
        return [line.strip() for line in self.references.value.splitlines() if line.strip()]

    def reference_list(self) -> list[str]:
        """The references a request or sweep carries: the box's URLs, then the uploaded images' stand-ins."""
        return [*self.reference_urls(), *self.uploads.stand_ins]

    async def load_references(self) -> None:
        """Fetch the references through the image cache and show their thumbnails (or why each failed)."""
        urls = self.reference_urls()
        gate = self.client.references
        found, problems = await check_references(urls, gate.cache, allow=gate.http_hosts(), deadline=gate.deadline)
        cells = []
        for url in urls:
            image = found.get(url)
            if image is None:
                continue
            src = data_url(gate.cache.thumbnail(image, _THUMB).read_bytes())
            cells.append(f"<img src='{src}' title='{html.escape(url)}' style='margin:2px'>")
        notes = [f"<div style='color:#b00020'>{html.escape(p.message)}</div>" for p in problems.values()]
        self.reference_thumbs.value = "".join(cells) + "".join(notes)

    # --- actions -----------------------------------------------------------------------------

    def check(self) -> Report:
        """Validate and show every problem next to the fields, with one-click fixes; price it."""
        request = self.request()
        report = self.client.validate(request)  # the client's rules: its own host (the emulator) may use http
        self.last_report = report
        spec = request.model
        limit = spec.prompt_field.max_length
        length = len(self.prompt.value)
        over = limit is not None and length > limit
        colour = "#b00020" if over else "#555"
        self.counter.value = f"<span style='color:{colour}'>{length}{f' / {limit}' if limit else ''} characters</span>"
        while len(self._problem_rows) < len(report.problems):
            self._problem_rows.append(_ProblemRow(self.apply_fix))
        rows = [row.show(problem) for row, problem in zip(self._problem_rows, report.problems, strict=False)]
        if tuple(rows) != self.problems.children:
            self.problems.children = rows
        try:
            cost = self.client.cost(request)  # the client's prices: the catalog's, yours, or the built-in list
            self.cost.value = (
                f"estimated <b>{cost}</b> ({cost.count} x {cost.per_image} {cost.currency}; "
                f"<span style='color:#666'>{html.escape(cost.source)}</span>)"
            )
        except ValueError:
            self.cost.value = "estimated: -"
        self.submit_button.disabled = not report.ok
        if self.sweep_mode.value:
            self._check_sweep()
        return report

    def apply_fix(self, fix: Fix) -> None:
        """Apply a one-click fix from a problem to the fields."""
        for key, value in fix.changes.items():
            if key in ("prompt", "count", "size"):  # the fields a fix may change
                getattr(self, key).value = value
        self.check()

    def roll_seed(self) -> int:
        """A new random seed (unless locked)."""
        if not self.lock.value:
            self.seed.value = fresh_seed()
        return int(self.seed.value)

    def submit(self) -> Run | None:
        """Send the request if it is valid; returns the run (None when refused)."""
        report = self.check()
        if not report.ok:
            self.message.value = "<span style='color:#b00020'>not sent: fix the problems above first</span>"
            return None
        try:  # local images are checked again as they are made inline (the 64 MiB per request, a cache emptied since)
            run = self.client.submit(self.request())
        except SeqnbError as exc:
            self.message.value = _refusal(exc)
            return None
        self.message.value = f"sent run <code>{run.id}</code>"
        if self.on_sent is not None:
            self.on_sent([run])
        self.roll_seed()
        return run

    # --- sweeps --------------------------------------------------------------------------------

    def plan(self) -> SweepPlan:
        """The sweep the sweep fields describe, validated and priced (nothing sent)."""
        return self.client.plan(**self._axes())

    def _axes(self) -> dict[str, Any]:
        """The sweep's axes as the sweep fields give them (an empty field: the single request's value)."""
        prompts = [p.strip() for p in self.sweep_prompts.value.splitlines() if p.strip()] or [self.prompt.value]
        chosen = list(self.sweep_models.value) or [self.model.value]
        return {
            "prompts": prompts,
            "seeds": parse_seeds(self.sweep_seeds.value) or [self.seed.value],
            "sizes": list(self.sweep_sizes.value) or None,
            "models": chosen,
            "references": [self.reference_list()] if any(get_model(m).role("references") for m in chosen) else None,
        }

    def _budget(self) -> Decimal | None:
        text = self.budget.value.strip()
        if not text:
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError(f"budget: {text!r} is not an amount; write e.g. 5.00") from None

    def _check_sweep(self) -> SweepPlan | None:
        try:
            plan = self.plan()
            budget = self._budget()
        except (ValueError, SeqnbError) as exc:
            self.sweep_summary.value = f"<span style='color:#b00020'>{html.escape(str(exc))}</span>"
            self.sweep_button.disabled = True
            return None
        self.last_plan = plan
        total = plan.total
        spent = next(iter(total.values()), Decimal(0))
        over = budget is not None and (len(total) > 1 or spent > budget)
        problems = plan.errors
        text = f"{plan.runs} runs, {plan.images} images, estimated <b>{plan.total_text()}</b>"
        if budget is not None:
            text += f" (budget {format_money(budget, next(iter(total), 'USD'))})"
        if problems:
            first = problems[0]
            text += f"<br><span style='color:#b00020'>{len(problems)} problem(s), e.g. run {first[0] + 1}: {html.escape(str(first[1]))}</span>"
        if over:
            text += "<br><span style='color:#b00020'>over budget: raise it or shrink the grid</span>"
        self.sweep_summary.value = text
        self.sweep_button.disabled = bool(problems) or over
        return plan

    def sweep(self) -> Sweep | None:
        """Send the sweep if it is valid and within budget; returns its runs (None when refused)."""
        plan = self._check_sweep()
        if plan is None or self.sweep_button.disabled:
            self.message.value = "<span style='color:#b00020'>sweep not sent: see the summary above</span>"
            return None
        try:  # what a plan does not check: the balance, local images gone from the cache since
            runs = self.client.sweep(**self._axes(), budget=self._budget(), quiet=True)
        except SeqnbError as exc:
            self.message.value = _refusal(exc)
            return None
        self.message.value = f"sent {runs.plan.summary()}"
        if self.on_sent is not None:
            self.on_sent(list(runs))
        return runs
