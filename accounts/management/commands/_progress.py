"""A one-line progress bar for commands run on a terminal; nothing at all otherwise."""
import shutil
import threading
import time

from django.utils.translation import gettext as _


class ProgressBar:
    """Call with (report, total=...) first, then (report) after each account; `close()` at the end."""

    def __init__(self, stream, *, label):
        self.stream, self.label = stream, label
        self.total = 0
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.lock = threading.Lock()

    def __call__(self, report, total=None):
        with self.lock:
            if total is not None:
                self.total = total
            now = time.monotonic()
            if now - self.drawn_at >= 0.1 or report.done >= self.total:
                self.drawn_at = now
                self._draw(report.done, report.counts)

    def _draw(self, done, counts):
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0
        eta = f"{(self.total - done) / rate:.0f}s" if rate and done < self.total else "-"
        text = _("%(failed)d failed, %(rate).0f/s, %(eta)s left") % {"failed": counts["failed"], "rate": rate,
                                                                    "eta": eta}
        counter = f"{done}/{self.total}"
        width = max(10, shutil.get_terminal_size().columns - len(self.label) - len(counter) - len(text) - 6)
        filled = int(width * done / self.total) if self.total else width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {counter} {text}", ending="")
        self.stream.flush()

    def close(self):
        """Erase the bar, so that the summary line takes its place."""
        with self.lock:
            self.stream.write("\r\033[K", ending="")
            self.stream.flush()
