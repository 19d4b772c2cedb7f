"""Microsoft 365 / Entra ID provider plugin. Cheap to import: sign-in libraries load only when signing in."""

from preflight.providers import PackagedProvider

provider = PackagedProvider(__name__, "microsoft", "Microsoft 365 / Entra ID")
