#!/usr/bin/python3
"""The web page of lvs-gateway in headless Chromium (Debian's chromium and
chromium-driver through python3-selenium) against real lvs processes: a
prompt typed and submitted with the keyboard, the progress bar reaching 100%,
the <video> playing through Media Source Extensions before the job has
finished, the time from submit to the first frame playing, screenshots
(desktop and phone width), cancel and delete from the page.

Exit 77 (skipped) when Selenium or Chromium is not installed."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stack import Stack  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    print("SKIPPED: python3-selenium is not installed (scripts/bootstrap)")
    sys.exit(77)

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
OUT = os.environ.get("LVS_TEST_OUT", "/tmp")

SAMPLER = """
window.lvsSamples = [];
setInterval(() => {
  const v = document.getElementById('player');
  window.lvsSamples.push({t: Date.now(), rs: v.readyState, ct: v.currentTime,
                          progress: document.getElementById('progress').value,
                          completedAt: window.lvsMetrics.completedEventTime || 0});
}, 50);
"""


def browser(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--autoplay-policy=no-user-gesture-required", f"--window-size={width},{height}"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def tiny_lumina_first_frame():
    """The tiny Lumina checkpoints of tests/golden on CPU: the page plays the
    video and reports the time from submit to the first frame playing."""
    golden = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
    model = ["--model=lumina", f"--dit={golden}/dit", f"--text-encoder={golden}/text_encoder",
             f"--vae={golden}/vae", "--device=cpu"]
    with Stack(model_flags=model) as s:
        d = browser(1280, 1000)
        try:
            d.get(s.base + "/")
            d.find_element(By.ID, "prompt").send_keys("a red panda eats bamboo in the snow")
            d.find_element(By.ID, "sample_config").send_keys("f24F96R960")
            d.find_element(By.CSS_SELECTOR, "details summary").send_keys(Keys.ENTER)
            for name, value in (("steps", "10"), ("fps", "8"), ("frames", "48")):
                d.find_element(By.ID, name).send_keys(value)
            d.execute_script("""
              const o = document.createElement('option'); o.value = o.textContent = '64x64';
              document.getElementById('size').appendChild(o);""")
            Select(d.find_element(By.ID, "size")).select_by_value("64x64")
            d.find_element(By.ID, "submit").send_keys(Keys.ENTER)
            WebDriverWait(d, 180, poll_frequency=0.05).until(
                lambda d: d.execute_script("return window.lvsMetrics.completedAt > 0"))
            WebDriverWait(d, 20, poll_frequency=0.05).until(
                lambda d: d.execute_script("return window.lvsMetrics.firstFrameAt > 0"))
            m = d.execute_script("return window.lvsMetrics")
            check(m["mse"], f"tiny Lumina: no MSE playback: {m}")
            check(d.find_element(By.ID, "progress").get_attribute("value") == "100",
                  "tiny Lumina: progress below 100")
            first = (m["firstFrameAt"] - m["submitAt"]) / 1000
            done = (m["completedAt"] - m["submitAt"]) / 1000
            print(f"tiny Lumina (64x64, 48 frames, 10 steps, CPU): codec {m['codec']}; submit to "
                  f"first frame playing {first:.2f} s; job completed {done:.2f} s after submit")
            d.save_screenshot(os.path.join(OUT, "gateway_page_lumina.png"))
        finally:
            d.quit()


def main():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        print("SKIPPED: chromium / chromium-driver are not installed (scripts/bootstrap)")
        return 77
    with Stack(worker_flags=["--fake-step-ms=60", "--fake-decode-ms=250"]) as s:
        d = browser(1280, 1000)
        try:
            d.get(s.base + "/")
            d.execute_script(SAMPLER)
            wait = WebDriverWait(d, 60, poll_frequency=0.05)
            # Keyboard only: type the prompt, open "Advanced", set fields, submit.
            prompt = d.find_element(By.ID, "prompt")
            prompt.send_keys("a red fox running through fresh snow at dawn")
            Select(d.find_element(By.ID, "size")).select_by_value("256x160")
            d.find_element(By.ID, "seed").send_keys("42")
            d.find_element(By.CSS_SELECTOR, "details summary").send_keys(Keys.ENTER)
            d.find_element(By.ID, "steps").send_keys("20")
            d.find_element(By.ID, "fps").send_keys("16")
            d.find_element(By.ID, "frames").send_keys("96")
            d.find_element(By.ID, "submit").send_keys(Keys.ENTER)
            wait.until(lambda d: d.execute_script("return window.lvsMetrics.completedAt > 0"))
            time.sleep(0.5)
            m = d.execute_script("return window.lvsMetrics")
            samples = d.execute_script("return window.lvsSamples")
            done_at = m["completedEventTime"]
            check(d.find_element(By.ID, "progress").get_attribute("value") == "100",
                  "progress bar below 100 at the end")
            check(m["mse"], f"no Media Source Extensions playback: {m}")
            playing = [x for x in samples if x["t"] < done_at and x["rs"] >= 3 and x["ct"] > 0]
            check(len(playing) >= 2 and playing[-1]["ct"] > playing[0]["ct"],
                  "the video did not play before the job finished: " +
                  json.dumps([x for x in samples if x["ct"] > 0][:5]))
            check(m["firstFrameAt"] > 0, "no first frame")
            first_frame = (m["firstFrameAt"] - m["submitAt"]) / 1000
            played_before_done = playing[-1]["ct"]
            status = d.find_element(By.ID, "status").text
            check(status.startswith("Done: 96 frames 256×160"), status)
            d.save_screenshot(os.path.join(OUT, "gateway_page.png"))
            print(f"codec {m['codec']}; submit to first frame playing {first_frame:.2f} s; "
                  f"played {played_before_done:.2f} s of video before the job finished "
                  f"(completed {(m['completedAt'] - m['submitAt']) / 1000:.2f} s after submit)")

            # Cancel from the page, then delete from the list.
            prompt.clear()
            prompt.send_keys("a very long video to cancel")
            d.find_element(By.ID, "steps").clear()
            d.find_element(By.ID, "steps").send_keys("200")
            d.find_element(By.ID, "submit").send_keys(Keys.ENTER)
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Denoising"))
            d.find_element(By.ID, "cancel").send_keys(Keys.ENTER)
            wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("Cancelled"))
            _, page = s.json("GET", "/v1/videos?limit=10")
            cancelled = [v for v in page["data"] if v["prompt"] == "a very long video to cancel"]
            check(cancelled and cancelled[0]["status"] == "cancelled", f"not cancelled: {cancelled}")
            vid = cancelled[0]["id"]
            # Tab to the video's Delete button and press Enter (the list is
            # redrawn every few seconds, so retry on a stale element).
            # A redraw between finding the button and focusing it leaves the
            # focus on the page, so press again until the entry is gone.
            def delete_pressed_and_gone(d):
                if not d.find_elements(By.CSS_SELECTOR, f'li[data-id="{vid}"]'):
                    return True
                try:
                    b = d.find_element(By.CSS_SELECTOR,
                                       f'li[data-id="{vid}"] button[aria-label^="Delete"]')
                    focused = d.execute_script(
                        "arguments[0].focus(); return document.activeElement === arguments[0];", b)
                    if focused:
                        d.switch_to.active_element.send_keys(Keys.ENTER)
                except Exception:  # not drawn yet or redrawn meanwhile
                    pass
                return False
            WebDriverWait(d, 30, poll_frequency=1).until(delete_pressed_and_gone)
            check(s.json("GET", f"/v1/videos/{vid}")[0] == 404, "deleted video still there")
        finally:
            d.quit()
        # Phone width: nothing wider than the screen.
        d = browser(390, 844)
        try:
            d.get(s.base + "/")
            WebDriverWait(d, 20).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "ul#jobs li"))
            over = d.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            check(over <= 0, f"page {over} px wider than a phone screen")
            d.save_screenshot(os.path.join(OUT, "gateway_page_phone.png"))
        finally:
            d.quit()
    tiny_lumina_first_frame()
    print("page test passed; screenshots in " + OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
