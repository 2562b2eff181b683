"""The address "Leave this page" goes to: checked once at start, so that a typo never
turns the way out into a broken link, or into anything but a plain web address."""

import urllib.parse


class QuickExitConfigError(RuntimeError):
    """HRDFUND_QUICK_EXIT_URL is not an address a link may lead to."""


def check_config(config):
    """Refuse to start unless the exit address is an http or https address with a host,
    no user name or password in it, and no space or control character."""
    url = config.get("QUICK_EXIT_URL") or ""
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise QuickExitConfigError("HRDFUND_QUICK_EXIT_URL must be a web address")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QuickExitConfigError("HRDFUND_QUICK_EXIT_URL must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise QuickExitConfigError("HRDFUND_QUICK_EXIT_URL must not hold a name or password")


def exit_host(config):
    """The site the exit address leads to, as a person reads it (``www.`` left out)."""
    host = urllib.parse.urlsplit(config["QUICK_EXIT_URL"]).hostname or ""
    return host.removeprefix("www.")
