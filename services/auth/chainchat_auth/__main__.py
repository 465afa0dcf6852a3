"""`python -m chainchat_auth` runs one instance of the auth service."""

from chainchat_auth.app import create_app
from chainchat_auth.settings import AuthSettings
from chainchat_service.web import run_http


def main() -> None:
    settings = AuthSettings()
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
