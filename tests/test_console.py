"""The web console in a real browser (issue 18): headless Chromium (Debian's `chromium`, driven by
Playwright) against a coordinator replaying real candles over nats-server, with the sample team as
five assistant processes. The page asks for the token, shows the escalation the split team raises,
approves it from its button, shows the resolution, and opens a decision's debate; a local JSON
webhook is told of the escalation, and the link it gets opens that escalation in the page.

Needs the binaries (`cargo build --bins`), nats-server (IA_TEST_NATS_URL, from scripts/services.sh)
and /usr/bin/chromium; scripts/test.sh provides all three. Set IA_CONSOLE_SCREENSHOTS=DIR to keep
screenshots of the page (the README's come from here).
"""

import http.server
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENT = ROOT / "target" / "debug" / "trading-agent"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "console-test-token-0123456789"
VOTERS = [
    ("market-monitor", "marketMonitor"),
    ("technical-analyst", "technicalAnalyst"),
    ("fundamental-analyst", "fundamentalAnalyst"),
    ("risk-manager", "riskManager"),
    ("strategist", "strategist"),
]


def missing(what):
    if os.environ.get("IA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (IA_REQUIRE_SERVICES=1)")
    pytest.skip(f"{what} is missing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, token=TOKEN):
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def wait_until(check, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Webhook(http.server.BaseHTTPRequestHandler):
    """A JSON webhook target: keeps every notification it is posted."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Webhook.received.append((self.path, json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    Webhook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Webhook.received
    server.shutdown()


def with_notifications(tmp_path, console_url):
    """The sample Strategy, telling a webhook target named `hook` and linking to the console."""
    strategy = (ROOT / "config/samples/strategy.yaml").read_text()
    assert strategy.rstrip().endswith("storage: 2Gi"), "spec is the sample's last block"
    strategy += (
        "  notifications:\n"
        f"    consoleUrl: {console_url}\n"
        "    targets:\n"
        "    - name: hook\n"
        "      kind: webhook\n"
        "      secretRef: {name: ia-hooks, key: url}\n"
    )
    path = tmp_path / "strategy.yaml"
    path.write_text(strategy)
    return path


@pytest.fixture
def coordinator(tmp_path, webhook):
    nats = os.environ.get("IA_TEST_NATS_URL")
    if not nats:
        missing("nats-server (IA_TEST_NATS_URL)")
    if not AGENT.exists():
        missing(f"{AGENT} (cargo build --bins)")
    namespace = f"console{os.getpid()}"
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []

    def spawn(name, args, env=None):
        out = open(logs / f"{name}.log", "w")
        processes.append(
            subprocess.Popen([str(AGENT), *args], stdout=out, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})}, cwd=ROOT)
        )

    for name, role in VOTERS:
        spawn(name, ["assistant", "--nats", nats, "--namespace", namespace,
                     "--strategy", "btc-eth-paper", "--role", role, "--name", name,
                     "--instance", f"{role}-0"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spawn("coordinator", [
        "coordinator", "--nats", nats, "--namespace", namespace,
        "--strategy-file", str(with_notifications(tmp_path, url)),
        "--policy-file", "config/samples/consensuspolicy.yaml",
        "--symbols", "BTCUSDT", "--data", "data/BTCUSDT-1h.csv.gz",
        "--from", "2020-03-01", "--to", "2020-04-30", "--wait-for-voters", "30",
        "--db", f"sqlite://{tmp_path / 'console.db'}", "--listen", f"127.0.0.1:{port}",
        "--hold-after-replay",
    ], env={"IA_API_TOKEN": TOKEN, "IA_API_READ_AUTH": "true", "RUST_LOG": "info",
            # the target's address, as the operator puts it from the target's Secret
            "IA_NOTIFY_HOOK": webhook[0]})
    try:
        wait_until(lambda: get(f"{url}/api/v1/info")["strategy"] == "btc-eth-paper", 90,
                   "the coordinator's API")
        yield url
    except AssertionError:
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def screenshot(page, name):
    folder = os.environ.get("IA_CONSOLE_SCREENSHOTS")
    if folder:
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(pathlib.Path(folder) / name))


def test_the_console_shows_the_debate_and_approves_an_escalation(coordinator, webhook):
    if not os.path.exists(CHROMIUM):
        missing("chromium (apt install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(coordinator + "/")

        # the page asks for the token once; a wrong one is refused and asked for again
        expect(page.locator("#login")).to_be_visible()
        page.fill("#token", "not-the-token")
        page.click("#login button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("not accepted")
        page.fill("#token", TOKEN)
        page.click("#login button[type=submit]")
        expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        expect(page.locator("#strategy")).to_contain_text("btc-eth-paper")

        # the split team's escalation holds BTCUSDT until someone answers: answer it from the page
        card = page.locator("#pending li.escalation").first
        expect(card).to_be_visible(timeout=60_000)
        escalation = card.get_attribute("data-id")
        screenshot(page, "console-escalation.png")

        # the webhook was told, with a link that opens this escalation in the console
        def told():
            return [b for _, b in webhook[1] if b["details"]["kind"] == "escalation"]

        wait_until(told, 15, "the escalation's notification")
        note = told()[0]
        assert note["details"]["escalation"]["id"] == escalation
        assert note["link"] == f"{coordinator}/#escalation/{escalation}"
        page.goto(note["link"])
        card = page.locator(f'#pending li.escalation[data-id="{escalation}"]')
        expect(card).to_have_class("escalation linked", timeout=15_000)
        card.locator("button.approve").click()
        resolved = page.locator(f'#resolved li[data-id="{escalation}"]')
        expect(resolved).to_have_attribute("data-outcome", "approved", timeout=15_000)
        expect(resolved).to_contain_text("approved by http-api")
        expect(page.locator(f'#pending li[data-id="{escalation}"]')).to_have_count(0)

        # the approved cycle is decided under the escalation's id, with its whole debate
        row = page.locator(f'#decisions tr.decision[data-id="{escalation}"]')
        expect(row).to_be_visible(timeout=30_000)
        expect(row.locator(".outcome")).to_have_text("escalated")
        row.click()
        debate = page.locator(f'#decisions tr.debate[data-id="{escalation}"]')
        expect(debate.locator(".why")).to_contain_text("asked a human, who approved (http-api)")
        expect(debate.locator("tr.opinion").first).to_be_visible()
        assert debate.locator("tr.opinion").count() >= 5, "every voter's opinion is in the debate"
        assert debate.locator(".reasoning").first.inner_text().strip(), "opinions carry reasoning"

        # the team's health and the book come from the API
        expect(page.locator("#assistants tr.assistant")).to_have_count(5, timeout=15_000)
        expect(page.locator("#assistants tr.assistant .dot.ok")).to_have_count(5)
        screenshot(page, "console.png")
        browser.close()
    assert not problems, f"the page reported errors: {problems}"

    # what the page showed is what the coordinator did: the stored decision was escalated, and
    # records who answered it
    def stored():
        return get(f"{coordinator}/api/v1/decisions/{escalation}")["escalated"]

    wait_until(stored, 60, "the approved decision in the store")
    assert get(f"{coordinator}/api/v1/decisions/{escalation}")["resolvedBy"] == "http-api"


def test_the_backtest_report_has_the_consoles_decision_view(tmp_path):
    """report.html (issue 18): the console's decision view, inlined: filters and a decision's debate."""
    if not AGENT.exists():
        missing(f"{AGENT} (cargo build --bins)")
    if not os.path.exists(CHROMIUM):
        missing("chromium (apt install chromium)")
    from playwright.sync_api import expect, sync_playwright

    out = tmp_path / "report"
    subprocess.run(
        [str(AGENT), "backtest", "--symbols", "BTCUSDT", "--from", "2020-11-01", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto((out / "report.html").as_uri())
        rows = page.locator(".decision-view tr.decision")
        expect(rows.first).to_be_visible()
        total = rows.count()
        assert total > 0

        # filtering by action shows only that action
        page.select_option(".decision-view .filter-action", "BUY")
        shown = page.locator(".decision-view tr.decision:not([hidden])")
        assert 0 < shown.count() < total
        assert {shown.nth(i).get_attribute("data-action") for i in range(shown.count())} == {"BUY"}

        # a decision opens its debate: why it ended, every opinion with its reasoning
        shown.first.click()
        debate = page.locator(".decision-view tr.debate").first
        expect(debate.locator(".why")).to_be_visible()
        assert debate.locator("tr.opinion").count() >= 5
        assert debate.locator(".reasoning").first.inner_text().strip()
        browser.close()
    assert not problems, f"the report reported errors: {problems}"
