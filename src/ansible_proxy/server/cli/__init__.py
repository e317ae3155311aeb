"""`bin-manager`, the console script: serve the API, or drive a running one over HTTP.

main.py         the parser, `serve` and main(): the only place that exits
client.py       the admin subcommands over HTTP (publish, pin, pause, ...)
admin_token.py  where the admin and enrolment tokens come from (flag, environment, file)
"""
