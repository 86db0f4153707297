"""Video recording needs an ffmpeg where Playwright looks for its own download.

Playwright records with ``$PLAYWRIGHT_BROWSERS_PATH/ffmpeg-<rev>/ffmpeg-linux``, ``<rev>`` being
the ffmpeg revision in the driver's ``browsers.json``. We never download it: we link the static
ffmpeg shipped by the ``imageio-ffmpeg`` wheel (or a system ffmpeg) there.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def _ffmpeg_revision() -> str | None:
    import playwright

    browsers = Path(playwright.__file__).parent / "driver" / "package" / "browsers.json"
    try:
        data = json.loads(browsers.read_text())
    except (OSError, ValueError):
        return None
    for browser in data.get("browsers", []):
        if browser.get("name") == "ffmpeg":
            return str(browser["revision"])
    return None


def _ffmpeg_binary() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def browsers_path() -> Path:
    configured = os.environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured and configured != "0":
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bastion" / "playwright"


def ensure_ffmpeg() -> bool:
    """Make Playwright find an ffmpeg; return False (video off) when none is available.

    Sets ``PLAYWRIGHT_BROWSERS_PATH`` for this process so that the driver started afterwards
    looks in our folder. Browsers are never looked up there: we launch ``/usr/bin/chromium``.
    """
    revision, binary = _ffmpeg_revision(), _ffmpeg_binary()
    if revision is None or binary is None:
        log.warning("video recording disabled: no ffmpeg or unknown Playwright ffmpeg revision")
        return False
    base = browsers_path()
    target = base / f"ffmpeg-{revision}" / "ffmpeg-linux"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            tmp = target.with_name(f".ffmpeg-{os.getpid()}")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(binary)
            tmp.replace(target)
    except OSError as exc:
        log.warning("video recording disabled: cannot link ffmpeg into %s: %s", base, exc)
        return False
    os.environ["PLAYWRIGHT_BROWSERS_PATH"] = str(base)
    return True
