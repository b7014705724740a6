"""The web page in a real headless Chromium (selenium + chromedriver): pick an adapter, submit,
see the answer (label bars, entity spans, streamed text), click thumbs-up and find the row in
the feedback database; a screenshot that must not be blank."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile

import pytest
from serving_helpers import build_models_dir, running_server

from conftest import build_tiny_encoder, build_tiny_llama

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver")
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,900"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-page")
    tiny = build_tiny_encoder(root / "tiny-bert", "bert")
    llama = build_tiny_llama(root / "tiny-llama")
    models = build_models_dir(root, tiny, llama)
    with running_server(models, "--feedback-db", str(root / "page.sqlite")) as running:
        running.db = root / "page.sqlite"
        yield running


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, css, timeout=60):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def ask(driver, server, model, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(server.url + "/")
    wait_for(driver, f'#model option[value="{model}"]')
    Select(driver.find_element(By.ID, "model")).select_by_value(model)
    box = driver.find_element(By.ID, "input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "submit").click()


def thumbs_up(driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "up").is_enabled())
    driver.find_element(By.ID, "up").click()
    WebDriverWait(driver, 30).until(
        lambda d: "stored as feedback" in d.find_element(By.ID, "status").text)


def feedback_rows(server):
    with sqlite3.connect(server.db) as connection:
        return connection.execute("SELECT adapter, rating, kind, response FROM feedback "
                                  "ORDER BY id").fetchall()


def test_classify_and_rate_in_the_browser(server, browser):
    ask(browser, server, "three", "the movie was good")
    label = wait_for(browser, "#label").text
    assert label in ("x", "y", "z")
    assert len(browser.find_elements("css selector", ".bar")) == 3
    thumbs_up(browser)
    adapter, rating, kind, response = feedback_rows(server)[-1]
    assert (adapter, rating, kind) == ("three", "up", "classify")
    assert f'"label": "{label}"' in response


def test_entities_are_highlighted(server, browser):
    ask(browser, server, "ner", "john smith lives in paris")
    wait_for(browser, "#entities")
    marks = browser.find_elements("css selector", "#entities mark")
    text = browser.find_element("css selector", "#entities").text
    assert "john" in text and "paris" in text
    assert all(m.find_element("css selector", "small").text for m in marks)


def test_generation_streams_and_is_rated(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    ask(browser, server, "chat", "hello")
    WebDriverWait(browser, 60).until(
        lambda d: d.find_element("css selector", "#up").is_enabled())
    generated = browser.find_element("css selector", "#generated").text
    thumbs_up(browser)
    adapter, rating, kind, response = feedback_rows(server)[-1]
    assert (adapter, rating, kind) == ("chat", "up", "chat")
    assert generated.strip() and generated.strip()[:5] in response


def test_the_page_is_not_blank(server, browser, tmp_path):
    from PIL import Image

    ask(browser, server, "three", "bad film")
    wait_for(browser, "#label")
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    background = image.getpixel((image.width - 2, image.height - 2))
    pixels = list(image.getdata())
    differing = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, background)) > 60)
    assert differing / len(pixels) > 0.05        # header, form and answer are drawn
    colours = {p for p in pixels[:: max(1, len(pixels) // 5000)]}
    assert len(colours) > 20
