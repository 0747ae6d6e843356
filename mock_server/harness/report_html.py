"""A run as a picture: one self-contained HTML file with an SVG sequence diagram on the simulated time axis.

The diagram has three lanes (the partner, the Zest API, the Zest admin) and one row per message: the partner's API
calls (status, injected faults marked), the admin's decisions (approvals, rejections, completions, read from the
events they emitted) and every webhook attempt back to the partner (status or error, latency, chaos marks). Rows
are in simulated-time order; within one instant the admin's decisions (which a clock move runs first) come before
the partner's calls, then the webhook attempts, each kind in its recorded order. Rows at the same instant share its
time label; a gap in simulated time is drawn as a break. Each case's verdict is pinned to the rows its evidence
names (``#seq`` of a call, ``deliveryId eventId attempt N``, else an eventId or deliveryId); below the diagram are
the same cases and evidence as in the JUnit file. No script and nothing from the network: the file opens anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path

from mock_server.clock import parse_instant
from mock_server.harness.control_client import JSON
from mock_server.harness.expectations import Evidence
from mock_server.harness.junit import CaseResult, summary_line

MAX_ROWS = 1500
LANES = {"partner": 230, "api": 560, "admin": 820}
LANE_TITLES = {"partner": "Partner (your code)", "api": "Zest API (zest-mock)", "admin": "Zest admin (simulated)"}
WIDTH, TOP, ROW, GAP, PIN_X, PIN_W = 1200, 70, 24, 22, 870, 160
ADMIN_EVENTS = {"spv_request.completed": ("approve", "spvRequestSlug"),
                "spv_request.rejected": ("reject", "spvRequestSlug"),
                "subscription.completed": ("complete", "subscriptionSlug")}
_REQUEST_REF = re.compile(r"#(\d+) [A-Z]+ ")
_ATTEMPT_REF = re.compile(r"(\S+) (\S+) attempt (\d+)\b")
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass
class Message:
    """One arrow of the diagram."""

    key: str
    at: datetime | None
    order: tuple[int, int]
    source: str
    target: str
    label: str
    kind: str  # ok | error | fault | admin
    detail: str
    refs: set[str] = field(default_factory=set)  # ids a case's evidence may name (eventIds, deliveryIds)
    pins: list[CaseResult] = field(default_factory=list)


def write_html(path: Path, title: str, cases: Sequence[CaseResult], evidence: Evidence, *, seed: int | None = None,
               command: Sequence[str] = (), timeline: Sequence[str] = ()) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(title, cases, evidence, seed=seed, command=command, timeline=timeline),
                    encoding="utf-8")


def render_html(title: str, cases: Sequence[CaseResult], evidence: Evidence, *, seed: int | None = None,
                command: Sequence[str] = (), timeline: Sequence[str] = ()) -> str:
    messages = messages_of(evidence)
    pinned = {id(case): pin(case, messages) for case in cases}
    failed = any(case.failed for case in cases)
    facts = [("seed", str(seed)) if seed is not None else None, ("command", " ".join(command)) if command else None,
             ("started", evidence.started_at) if evidence.started_at else None,
             ("partner", evidence.client_id)]
    head = "".join(f"<dt>{escape(k)}</dt><dd><code>{escape(v)}</code></dd>" for k, v in filter(None, facts))
    verdict = "FAILED" if failed else "PASSED"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}: {verdict}</title><style>{_CSS}</style></head>
<body><header><h1>{escape(title)} <span class="verdict {verdict.lower()}">{verdict}</span></h1>
<p>{escape(summary_line(cases))}</p><dl class="facts">{head}</dl></header>
<main>
<section><h2>Expectations</h2>{_cases_table(cases, pinned)}</section>
<section><h2>Sequence on the simulated clock</h2>
<p class="muted">One row per message in simulated-time order; ⚡ marks an injected fault, ✗/✓ a verdict pinned to the
row. Hover a row for its details.</p>{svg(messages, evidence.started_at)}</section>
{_timeline(timeline)}
<section><h2>Evidence (as in the JUnit report)</h2>{_evidence(cases)}</section>
</main></body></html>
"""


# ---- the messages ---------------------------------------------------------------------------------------------


def messages_of(ev: Evidence) -> list[Message]:
    """Admin decisions, calls and webhook attempts, sorted by simulated time, then in that order of kinds."""
    types = {str(e.get("eventId")): str(e.get("eventType")) for e in ev.events}
    messages = [_call(row) for row in ev.requests]
    messages += [m for m in (_decision(e) for e in ev.events) if m is not None]
    messages += [_delivery(a, types) for a in ev.attempts]
    return sorted(messages, key=lambda m: (m.at or datetime.min, m.order))


def _call(row: JSON) -> Message:
    status, fault = row.get("status"), row.get("fault")
    answer = "no answer" if status == 499 else f"→ {status}"
    label = f"{row.get('method')} {row.get('path')} {answer}"
    kind = "fault" if fault else "error" if int(status or 0) >= 400 else "ok"
    detail = (f"#{row.get('seq')} {row.get('operationId') or ''} status {status} key {row.get('idempotencyKey') or '-'}"
              f" body {str(row.get('bodyHash') or '-')[:16]} {row.get('durationMs')} ms at {row.get('at')}")
    if fault:
        label, detail = f"⚡ {label} ({fault})", f"{detail} fault {fault}"
    return Message(f"req-{row.get('seq')}", _instant(row.get("at")), (1, int(row.get("seq") or 0)), "partner", "api",
                   label, kind, detail)


def _decision(event: JSON) -> Message | None:
    known = ADMIN_EVENTS.get(str(event.get("eventType")))
    if known is None:
        return None
    verb, key = known
    subject = str((event.get("data") or {}).get(key, "?"))
    event_id = str(event.get("eventId"))
    return Message(f"evt-{event_id}", _instant(event.get("occurredAt")), (0, 0), "admin", "api",
                   f"{verb} {subject}", "admin", f"{event.get('eventType')} {event_id} at {event.get('occurredAt')}",
                   refs={event_id, subject})


def _delivery(a: JSON, types: dict[str, str]) -> Message:
    event_id, delivery_id = str(a.get("eventId")), str(a.get("deliveryId"))
    result = a.get("statusCode") if a.get("statusCode") is not None else a.get("error") or "no answer"
    outcome, fault = str(a.get("outcome")), a.get("fault")
    latency = round(float(a.get("durationMs") or 0))
    label = f"{types.get(event_id, 'webhook')} #{a.get('attempt')} → {result} · {latency} ms"
    kind = "ok" if outcome in ("delivered", "tamper_rejected") else "error"
    if fault:
        label, kind = f"⚡ {label} ({fault})", "fault" if kind == "error" else kind
    detail = (f"{delivery_id} {event_id} attempt {a.get('attempt')} {outcome} {result} at {a.get('at')}"
              + (f" next {a.get('nextAttemptAt')}" if a.get("nextAttemptAt") else ""))
    return Message(f"att-{delivery_id}-{a.get('attempt')}", _instant(a.get("at")), (2, 0), "api", "partner", label,
                   kind, detail, refs={event_id, delivery_id})


def pin(case: CaseResult, messages: list[Message]) -> list[Message]:
    """The messages ``case``'s evidence names, each told it was pinned."""
    text = case.evidence
    keys = {f"req-{n}" for n in _REQUEST_REF.findall(text)}
    keys |= {f"att-{delivery}-{attempt}" for delivery, _, attempt in _ATTEMPT_REF.findall(text)}
    tokens = set(_TOKEN.findall(text)) if not keys else set()  # ids only when no row was named exactly
    found = [m for m in messages if m.key in keys or (m.kind != "ok" and m.refs & tokens)]
    for message in found:
        message.pins.append(case)
    return found


def _instant(value: object) -> datetime | None:
    try:
        return parse_instant(str(value)).replace(tzinfo=None) if value else None
    except ValueError:
        return None


# ---- the picture ----------------------------------------------------------------------------------------------


def svg(messages: list[Message], started_at: str | None) -> str:
    drawn = messages[:MAX_ROWS]
    start = _instant(started_at) or next((m.at for m in drawn if m.at), None)
    rows: list[str] = []
    y, previous = TOP, None
    for message in drawn:
        if previous is not None and message.at and previous.at and message.at > previous.at:
            gap = (message.at - previous.at).total_seconds()
            rows.append(f'<line class="break" x1="10" x2="{WIDTH - 10}" y1="{y + 4}" y2="{y + 4}"/>'
                        f'<text class="gap" x="14" y="{y + 16}">{escape(_duration(gap))} later</text>')
            y += GAP
        show_time = previous is None or message.at != previous.at
        rows.append(_row(message, y, _offset(message.at, start) if show_time else ""))
        previous, y = message, y + ROW
    if len(messages) > MAX_ROWS:
        rows.append(f'<text class="gap" x="14" y="{y + 14}">… {len(messages) - MAX_ROWS} more not drawn</text>')
        y += ROW
    if not drawn:
        rows.append(f'<text class="gap" x="{LANES["partner"]}" y="{y + 14}">nothing happened: no call, no '
                    'decision, no delivery</text>')
        y += ROW
    height = y + 20
    lanes = "".join(
        f'<line class="lane" x1="{x}" x2="{x}" y1="{TOP - 16}" y2="{height - 10}"/>'
        f'<rect class="head" x="{x - 95}" y="10" width="190" height="34" rx="6"/>'
        f'<text class="lane-title" x="{x}" y="32" text-anchor="middle">{escape(LANE_TITLES[name])}</text>'
        for name, x in LANES.items())
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
            f'aria-label="sequence diagram of the run"><defs>{_MARKERS}</defs>'
            f'<text class="axis" x="14" y="32">simulated time</text>{lanes}{"".join(rows)}</svg>')


def _row(m: Message, y: int, time_label: str) -> str:
    x1, x2 = LANES[m.source], LANES[m.target]
    mid, left = (x1 + x2) / 2, min(x1, x2)
    pins = "".join(
        f'<a href="#case-{_anchor(c.name)}"><text class="pin {"fail" if c.failed else "pass"}" x="{PIN_X + PIN_W * i}" '
        f'y="{y + 16}">{"✗" if c.failed else "✓"} {escape(_short(c.name, 22))}</text></a>'
        for i, c in enumerate(m.pins[:2]))
    return (f'<g id="msg-{escape(m.key)}" class="msg {m.kind}"><title>{escape(m.detail)}</title>'
            f'<rect class="bg" x="4" y="{y}" width="{WIDTH - 8}" height="{ROW}"/>'
            f'<text class="time" x="14" y="{y + 16}">{escape(time_label)}</text>'
            f'<line class="arrow" x1="{x1}" x2="{x2}" y1="{y + 17}" y2="{y + 17}" marker-end="url(#head-{m.kind})"/>'
            f'<text class="label" x="{mid if m.source != "admin" else left + 8}" y="{y + 12}" '
            f'text-anchor="{"middle" if m.source != "admin" else "start"}">{escape(_short(m.label, 58))}</text>'
            f'{pins}</g>')


def _offset(at: datetime | None, start: datetime | None) -> str:
    if at is None:
        return "?"
    if start is None:
        return at.isoformat(timespec="seconds")
    seconds = (at - start).total_seconds()
    return f"T{'-' if seconds < 0 else '+'}{_duration(abs(seconds))}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = f"{seconds - whole:.3f}"[1:] if seconds != whole else ""
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}{fraction}s" if minutes else f"{secs}{fraction}s"


def _short(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, elided in the middle (a path's end tells calls apart)."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]}…{text[len(text) - (limit - head - 1):]}"


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name)


# ---- the tables -----------------------------------------------------------------------------------------------


def _cases_table(cases: Sequence[CaseResult], pinned: dict[int, list[Message]]) -> str:
    rows = []
    for case in cases:
        links = " ".join(f'<a href="#msg-{escape(m.key)}">{escape(_short(m.label, 40))}</a>' for m in pinned[id(case)])
        rows.append(f'<tr id="case-{_anchor(case.name)}" class="{case.status.lower()}"><td><b>{case.status}</b></td>'
                    f"<td>{escape(case.name)}</td><td>{escape(case.message)}</td>"
                    f'<td class="links">{links or "<span class=muted>—</span>"}</td></tr>')
    return ("<table><thead><tr><th>verdict</th><th>expectation</th><th>why</th><th>decided by</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _timeline(timeline: Sequence[str]) -> str:
    if not timeline:
        return ""
    items = "".join(f"<li>{escape(step)}</li>" for step in timeline)
    return f"<section><h2>Timeline played</h2><ol>{items}</ol></section>"


def _evidence(cases: Sequence[CaseResult]) -> str:
    blocks = []
    for case in cases:
        body = f"<pre>{escape(case.evidence)}</pre>" if case.evidence else '<p class="muted">no evidence lines</p>'
        blocks.append(f'<details{" open" if case.failed else ""}><summary>{case.status} {escape(case.name)}: '
                      f"{escape(case.message)} <span class=muted>({case.duration_s:.3f} s)</span></summary>{body}"
                      "</details>")
    return "".join(blocks)


_MARKERS = "".join(
    f'<marker id="head-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
    f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
    for kind, colour in (("ok", "#2f6fdf"), ("error", "#b42318"), ("fault", "#c2410c"), ("admin", "#7a3fd1")))
_CSS = """
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2330;
background:#f4f6f9}
header{background:#17213a;color:#fff;padding:12px 20px}header h1{margin:0;font-size:20px}
.verdict{font-size:13px;padding:2px 10px;border-radius:10px;vertical-align:middle}
.verdict.passed{background:#d9f5e0;color:#157f3b}.verdict.failed{background:#fde2df;color:#b42318}
.facts{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0 0}.facts dt{color:#aab7d4}.facts dd{margin:0}
main{padding:12px 20px 40px}section{background:#fff;border:1px solid #d9dee7;border-radius:8px;padding:10px 14px;
margin:0 0 14px;overflow-x:auto}h2{font-size:16px;margin:4px 0 8px}.muted{color:#667085}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e3e7ee;
vertical-align:top}tr.fail td:first-child{color:#b42318}tr.pass td:first-child{color:#157f3b}
tr.skip td:first-child{color:#667085}td.links a{display:inline-block;margin-right:8px;font-size:12px}
tr:target{background:#fff3b0}pre{white-space:pre-wrap;background:#f6f8fa;padding:8px;border-radius:6px;margin:4px 0}
details{margin:4px 0}summary{cursor:pointer}
svg{font:12px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;min-width:900px}
.lane{stroke:#c4cad6;stroke-dasharray:4 4}.head{fill:#eef2fb;stroke:#9fb0d6}.lane-title{font-weight:600}
.axis{fill:#667085}.time{fill:#667085;font-variant-numeric:tabular-nums}.gap{fill:#98a2b3;font-style:italic}
.break{stroke:#d0d5dd;stroke-dasharray:2 6}.bg{fill:transparent}.msg:hover .bg,.msg:target .bg{fill:#fff3b0}
.arrow{stroke-width:1.6}.ok .arrow{stroke:#2f6fdf}.error .arrow{stroke:#b42318}
.fault .arrow{stroke:#c2410c;stroke-dasharray:6 3}.admin .arrow{stroke:#7a3fd1}
.error .label,.fault .label{fill:#b42318}.admin .label{fill:#7a3fd1}.pin{font-weight:600}.pin.fail{fill:#b42318}
.pin.pass{fill:#157f3b}
"""
