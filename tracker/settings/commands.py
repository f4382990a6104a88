"""Which settings each kind of command reads (tracker/cli/parser.py gives each command its
groups): every command the first group; the rest by what the command does."""

EVERY_COMMAND = ("database_url", "log_format")
POLLING = (
    "api_base",
    "status_path",
    "token",
    "proxy",
    "config",
    "poll_interval",
    "concurrency",
    "request_timeout",
)
POLL = (*POLLING, "give_up_after", "record")
FOLLOW_UPS = (
    "download_dir",
    "download_variants",
    "notify_url",
    "notify_secret",
    "on_finish",
    "on_finish_timeout",
    "webhook_port",
    "webhook_host",
    "webhook_secret",
)
OPERATING = ("metrics_port", "metrics_host", "retain")
SERVE = (
    "http_host",
    "http_port",
    "server_tokens",
    "cors_origins",
    "metrics_public",
    "webhook_registers",
    "webhook_secret",
    "forwarded_allow_ips",
)
RUN = (*POLL, *FOLLOW_UPS, *OPERATING, *SERVE)
DOWNLOAD = (
    "api_base",
    "token",
    "proxy",
    "config",
    "request_timeout",
    "download_dir",
    "download_variants",
)
# A task removed owes its events as any finished task (the daemons deliver them), whether
# `tracker remove` or the HTTP service of `tracker serve` removes it.
REMOVE = ("notify_url", "on_finish")
# What registers tasks (`tracker add`, `tracker serve`) reads the providers file for its
# providers' names, the names a task may be registered under, not their tokens: it polls nothing.
REGISTER = ("config",)
SERVE_ALONE = (*SERVE, *REMOVE, *REGISTER)
