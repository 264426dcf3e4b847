"""What a human annotator sees: headless Chromium on the real Argilla UI of the embedded server.

Two speech pairs (shipped fixtures, clips of different lengths) are pushed with the project's own
push; an annotator signs in through the login form, opens the dataset from the home page, and
the test checks the annotation page as rendered by Argilla's markdown renderer and sanitiser:

- the prompt shows as exactly the (untrusted, escaped) text;
- exactly two ``<audio>`` players, one in field "A" and one in field "B", each reaching
  ``readyState >= HAVE_CURRENT_DATA`` with the duration of the right fixture (in the displayed
  A/B order), playing the very bytes of that file (SHA-256 in the page), and actually playing
  (``currentTime`` advances after ``play()``, muted so no sound device or gesture is needed);
- the "Which is better?" question and its three options are visible;
- a screenshot is saved (pytest's tmp dir, and ``$RLHF_ARTIFACTS_DIR`` when set);
- the annotator answers through the UI and ``pull`` maps the answer back to the original files.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): the
test fails, with the install command, when they are missing. Nothing is downloaded: the driver
path is given to Selenium (so Selenium Manager is not used) and the browser runs with its
network-using features off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import soundfile as sf

from annotation.argilla.backend import ArgillaBackend
from annotation.argilla.connection import Connection
from annotation.argilla.records import (
    Q_NATURAL_FIRST, Q_NATURAL_SECOND, Q_PREFERENCE, display_order,
)
from annotation.argilla.settings import LABELS
from annotation.pairs import make_pair

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL_HINT = "apt-get install chromium chromium-driver"
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1400,1000",
)
WAIT_S = 30.0  # bound on every wait for the page
HAVE_CURRENT_DATA = 2  # HTMLMediaElement.readyState
WORKSPACE = "browser"
# (prompt, audio_a, audio_b): different lengths inside a pair, so the players can be told apart
PAIRS = [
    ("Read aloud: the quick brown fox & the <lazy> dog *now*", "fox.wav", "apples_fast.wav"),
    ("Read aloud: the baker brings a warm blanket", "baker.wav", "bird_f3.wav"),
]

# JavaScript run in the page. `arguments[-1]` is the callback of execute_async_script.
JS_PLAYERS = """
return Array.from(document.querySelectorAll('audio')).map(a => {
  const field = a.closest('.text_field_component');
  const title = field && field.querySelector('.text_field_component__title-content');
  return {field: title ? title.textContent.trim() : null, ready: a.readyState,
          duration: a.duration, error: a.error ? a.error.code : null,
          controls: a.controls, src: a.currentSrc.slice(0, 32)};
});"""
JS_SHA256 = """
const done = arguments[arguments.length - 1];
fetch(document.querySelectorAll('audio')[arguments[0]].currentSrc)
  .then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b))
  .then(h => done(Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, '0')).join('')))
  .catch(e => done('error: ' + e));"""
JS_PLAY = """
const [i, done] = [arguments[0], arguments[arguments.length - 1]];
const a = document.querySelectorAll('audio')[i];
a.muted = true;
a.play().then(() => {
  const t0 = performance.now();
  const poll = () => {
    if (a.currentTime > 0.2 || performance.now() - t0 > 10000) {
      const t = a.currentTime; a.pause(); a.currentTime = 0; a.muted = false;
      done({played: t, error: null});
    } else { setTimeout(poll, 50); }
  };
  poll();
}).catch(e => done({played: 0, error: String(e)}));"""
JS_FIELD_TEXT = """
for (const f of document.querySelectorAll('.text_field_component')) {
  const title = f.querySelector('.text_field_component__title-content');
  if (title && title.textContent.trim() === arguments[0]) {
    const body = f.querySelector('.markdown-render');
    return body ? body.innerText.trim() : null;
  }
}
return null;"""


def _browser_paths() -> tuple[str, str]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.fail(f"the browser test needs {' and '.join(missing)}: install the Debian packages "
                    f"with `{INSTALL_HINT}` (.ci/run does this before `make test`)", pytrace=False)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """A headless Chromium driven through /usr/bin/chromedriver, with a fresh profile."""
    chromium, chromedriver = _browser_paths()
    monkeypatch.setenv("SE_OFFLINE", "true")  # belt and braces: Selenium Manager never fetches
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_script_timeout(WAIT_S)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, what: str, condition, detail=None):
    """Poll ``condition(driver)`` for up to :data:`WAIT_S` seconds; on a timeout fail with
    ``what``, the page address and ``detail(driver)`` (what the page has instead)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition)
    except TimeoutException:
        seen = f"; found {detail(driver)!r}" if detail else ""
        raise AssertionError(f"timed out after {WAIT_S:.0f} s waiting for {what} "
                             f"(page {driver.current_url!r}){seen}") from None


def _visible_text(driver, text: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.XPATH, f"//*[normalize-space(text())={_xpath_literal(text)}]")
    return [e for e in found if e.is_displayed()]


def _xpath_literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    return "concat(" + ", \"'\", ".join(f"'{part}'" for part in text.split("'")) + ")"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _sign_in(driver, url: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/sign-in")
    _wait(driver, "the sign-in form",
          lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"))
    driver.find_element(By.CSS_SELECTOR, "input[name=Username]").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(driver, "the home page after signing in", lambda d: "/sign-in" not in d.current_url)


def test_annotator_sees_two_playable_players(argilla_server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    started = time.perf_counter()
    pairs = [make_pair(prompt, FIXTURES / a, FIXTURES / b, {"policy": "fixture"})
             for prompt, a, b in PAIRS]
    name = f"browser-{uuid.uuid4().hex[:6]}"
    owner = Connection(argilla_server.url, argilla_server.api_key, "test")
    backend = ArgillaBackend(owner, name, WORKSPACE, outbox=tmp_path / "outbox.jsonl")
    assert backend.push(pairs).sent == 2
    password = "annotator-" + uuid.uuid4().hex[:10]
    annotator = f"ann-browser-{uuid.uuid4().hex[:4]}"
    argilla_server.add_user(annotator, role="annotator", workspace=WORKSPACE, password=password)

    _sign_in(browser, argilla_server.url, annotator, password)
    card = _wait(browser, f"dataset {name!r} on the home page", lambda d: _visible_text(d, name))
    card[0].click()
    _wait(browser, "the annotation page", lambda d: "/annotation-mode" in d.current_url)
    _wait(browser, "a record with two loaded players",
          lambda d: d.execute_script(JS_FIELD_TEXT, "Prompt")
          and len(d.execute_script(JS_PLAYERS)) == 2
          and all(p["ready"] >= HAVE_CURRENT_DATA or p["error"] is not None
                  for p in d.execute_script(JS_PLAYERS)),
          lambda d: {"prompt": d.execute_script(JS_FIELD_TEXT, "Prompt"),
                     "players": d.execute_script(JS_PLAYERS)})

    # which pair is on screen (queue order is per annotator): the prompt, shown verbatim
    shown = browser.execute_script(JS_FIELD_TEXT, "Prompt")
    pair = next((p for p in pairs if p.prompt == shown), None)
    assert pair is not None, f"prompt on the page {shown!r} is none of {[p.prompt for p in pairs]}"
    order = display_order(pair.key)
    first, second = (pair.audio_a, pair.audio_b) if order == "AB" else (pair.audio_b, pair.audio_a)

    players = browser.execute_script(JS_PLAYERS)
    assert [p["field"] for p in players] == ["A", "B"], players
    for i, (player, path) in enumerate(zip(players, (first, second))):
        assert player["error"] is None and player["controls"], player
        assert player["src"].startswith("data:audio/wav;base64,"), player
        assert player["ready"] >= HAVE_CURRENT_DATA, player
        assert player["duration"] == pytest.approx(sf.info(path).duration, abs=0.02), (path, player)
        digest = browser.execute_async_script(JS_SHA256, i)
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest(), (path, digest)
        played = browser.execute_async_script(JS_PLAY, i)
        assert played["error"] is None and played["played"] > 0.2, (path, played)

    # the question and its options are on screen
    assert _visible_text(browser, "Which is better?")
    for label in LABELS.values():
        assert _visible_text(browser, label), f"option {label!r} not visible"

    shot = tmp_path / "annotation_page.png"
    assert browser.save_screenshot(str(shot))
    width, height = _png_size(shot)
    assert width == 1400 and height >= 600, (width, height)
    assert shot.stat().st_size > 20_000
    if os.environ.get("RLHF_ARTIFACTS_DIR"):
        out = Path(os.environ["RLHF_ARTIFACTS_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out / "annotation_page.png")

    # answer through the UI: "A is better" (the first clip shown), A = 5, B = 2, submit
    for label_for in (f"{Q_PREFERENCE}_A", f"{Q_NATURAL_FIRST}_5", f"{Q_NATURAL_SECOND}_2"):
        browser.find_element(By.CSS_SELECTOR, f"label[for='{label_for}']").click()
    submit = browser.find_element(By.CSS_SELECTOR, "button[type=submit].button--submit")
    _wait(browser, "the Submit button to be enabled", lambda d: submit.is_enabled())
    submit.click()
    _wait(browser, "the next record", lambda d: d.execute_script(JS_FIELD_TEXT, "Prompt") not in
          (None, shown))

    result = backend.pull()
    assert result.counts["kept"] == 1, result.counts
    row = result.preferences[0]
    assert row["id"] == pair.id and (row["chosen"], row["rejected"]) == (first, second)
    assert row["annotators"] == [annotator] and row["votes"]["chosen"] == 1
    print(f"browser test: {time.perf_counter() - started:.1f} s, order {order}, "
          f"players {[round(p['duration'], 3) for p in players]}")
