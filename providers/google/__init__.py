"""Google Workspace provider plugin. Cheap to import: sign-in libraries load only when signing in."""

from preflight.providers import PackagedProvider

provider = PackagedProvider(__name__, "google", "Google Workspace")
