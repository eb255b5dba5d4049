"""A counting SMTP sink for bench/relay.py, as its own process: `python bench/_sink.py PORT`.

Prints READY, keeps nothing but a count and a byte total, prints `COUNT n BYTES b` on SIGUSR1 and
exits on SIGTERM."""
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self):
        self.count = self.bytes = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            self.bytes += len(envelope.original_content)
        return "250 2.0.0 Message accepted"


def main():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=None)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: print(f"COUNT {sink.count} BYTES {sink.bytes}", flush=True))
    print("READY", flush=True)
    while not stop.wait(0.1):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
