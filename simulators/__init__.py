"""Stand-ins for the outside systems, for the demo, the tests and the benchmarks: never for production.

`act_api` serves the classic Act API v2, an Engine's NXQL API and (through `infinity`) Nexthink
Infinity's token, Remote Actions and NQL APIs; `servicenow` a ServiceNow-like incident API. The
portal's own code never imports this package (an import-linter contract says so), and settings add
it to INSTALLED_APPS only with DEBUG or NEXTHINK_SIMULATOR=true: a production start has neither its
commands nor its code.
"""
