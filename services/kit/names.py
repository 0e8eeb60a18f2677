"""The names a request carries, as HTTP bodies, paths and queries take them: one rule for
a symbol and one for an account, the contract's (services.contract.SYMBOL_RE, ACCOUNT_RE),
which its Structs (risk's request) apply too. A symbol is taken in any case and upper-cased.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from services.contract import ACCOUNT_RE, SYMBOL_RE

__all__ = ["Account", "AccountQuery", "Name", "Symbol", "Symbols"]

# No whitespace stripping (here, as in the Structs): " abc\n" is not "abc", it is invalid.
Symbol = Annotated[str, StringConstraints(to_upper=True, pattern=f"^{SYMBOL_RE}$")]
# Symbols, comma-separated ("AAPL,MSFT")
Symbols = Annotated[str, StringConstraints(to_upper=True, pattern=f"^{SYMBOL_RE}(,{SYMBOL_RE})*$")]
# An account, or a client's name for its order (client_order_id): the same rule.
Name = Annotated[str, StringConstraints(pattern=f"^{ACCOUNT_RE}$")]
Account = Name
# `?account=` on the ledger endpoints; omitted, the OMS's default account, so `/positions`
# answers for the orders placed without one.
AccountQuery = Annotated[Account, Query(description="the account (default: the OMS's default account)")]
