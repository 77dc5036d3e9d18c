"""Screenshots of a graded batch's pages in headless Chromium, as a TA sees them.

    python bench/screenshots.py OUT [--width 1280] [--report STUDENT] [--to DIR]

writes DIR/index-<width>.png (the class summary) and DIR/report-<width>.png (one student's
report; default: the first one), full page height. Uses Debian's chromium and chromium-driver
(`apt-get install chromium chromium-driver`) through Selenium; nothing is downloaded.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from selenium import webdriver


def browser(width: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},1000", "--hide-scrollbars"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))


def shoot(driver: webdriver.Chrome, page: Path, target: Path, width: int) -> None:
    driver.get(page.resolve().as_uri())
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(int(height) + 40, 12000))
    driver.save_screenshot(str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--report", default=None, help="the student folder whose report to shoot")
    parser.add_argument("--to", type=Path, default=Path("."))
    args = parser.parse_args()
    report = args.out / args.report / "report.html" if args.report else sorted(args.out.glob("*/report.html"))[0]
    args.to.mkdir(parents=True, exist_ok=True)
    driver = browser(args.width)
    try:
        for name, page in (("index", args.out / "index.html"), ("report", report)):
            target = args.to / f"{name}-{args.width}.png"
            shoot(driver, page, target, args.width)
            print(target)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
