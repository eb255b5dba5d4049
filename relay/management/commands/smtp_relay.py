import asyncio
import logging
import signal

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from relay.server import Relay, RelayConfig, RelayConfigError

log = logging.getLogger("relay")


class Command(BaseCommand):
    help = _(
        "Run the SMTP relay: devices that only know a user and a password (printers, scanners, old programs) "
        "send through it, and it forwards their messages with the account's OAuth token. Stops cleanly on "
        "SIGTERM; SIGHUP reads the TLS certificate again."
    )

    def handle(self, *args, **options):
        try:
            relay = Relay(RelayConfig.from_settings())
        except RelayConfigError as error:
            raise CommandError(str(error)) from None
        asyncio.run(self.serve(relay))

    async def serve(self, relay):
        try:
            addresses = await relay.start()
        except OSError as error:
            raise CommandError(_("The SMTP relay cannot listen: %(error)s. (Ports below 1024 need root or the "
                                 "CAP_NET_BIND_SERVICE capability.)") % {"error": error.strerror or error}) from None
        for host, port, kind in addresses:
            self.stdout.write(_("SMTP relay listening on %(host)s:%(port)s (%(kind)s)") % {
                "host": host, "port": port, "kind": kind,
            })
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload, relay)
        await stop.wait()
        self.stdout.write(_("Stopping: messages being forwarded are finished first."))
        await relay.stop()

    def reload(self, relay):
        try:
            relay.reload_certificate()
        except RelayConfigError as error:
            log.error("%s", error)
        else:
            log.info("TLS certificate read again")
