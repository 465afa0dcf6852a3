"""`python -m chainchat_ledger` runs one instance of the ledger service."""

from chainchat_ledger.app import create_app
from chainchat_ledger.settings import LedgerSettings
from chainchat_service.web import run_http


def main() -> None:
    settings = LedgerSettings()
    run_http(create_app(settings), settings)


if __name__ == "__main__":
    main()
