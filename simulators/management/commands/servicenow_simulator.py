from django.core.management.base import BaseCommand

from simulators import servicenow as simulator


class Command(BaseCommand):
    help = "Serve the ServiceNow-like incident Table API simulator on its own (the Act API simulator serves it too)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8766)
        parser.add_argument("--verbose", action="store_true", help="log every request")

    def handle(self, *args, **options):
        server = simulator.ServiceNowServer((options["host"], options["port"]))
        server.verbose = options["verbose"]
        self.stdout.write(f"ServiceNow simulator listening on {server.url}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
