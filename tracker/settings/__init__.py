"""Settings: one ``Settings`` dataclass, one parser per kind of value, one table of options.

``options`` holds each setting once (field, flag, variable, parser, help), ``commands`` which
commands read which; ``values`` the parsers; ``providers`` reads the providers file and
``proxies`` the proxy settings; ``environment`` reads flags over ``TRACKER_*`` variables and is
the only code that reads the environment. May import ``tracker.core`` and ``tracker.errors``.
"""

from tracker.core.secrets import Secret
from tracker.settings.environment import child_environment, load_settings, settings_from_keywords
from tracker.settings.options import (
    DEFAULT_API_BASE,
    DEFAULT_DATABASE_URL,
    OPTIONS,
    Option,
    Settings,
)
from tracker.settings.values import parse_duration

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_DATABASE_URL",
    "OPTIONS",
    "Option",
    "Secret",
    "Settings",
    "child_environment",
    "load_settings",
    "parse_duration",
    "settings_from_keywords",
]
