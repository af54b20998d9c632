from django.core.management.base import BaseCommand

from simulators import act_api as simulator


class Command(BaseCommand):
    help = "Serve the Nexthink Act API v2 and List Engines API simulator (for the demo and tests)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--config", help="JSON file of users, engines, actions, devices (default: built-in)")
        parser.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
        parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
        parser.add_argument("--verbose", action="store_true", help="log every request")

    def handle(self, *args, **options):
        server = simulator.make_server(
            host=options["host"],
            port=options["port"],
            config=simulator.load_config(options["config"]),
            certfile=options["certfile"],
            keyfile=options["keyfile"],
        )
        server.verbose = options["verbose"]
        self.stdout.write(f"Nexthink simulator listening on {server.url}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
