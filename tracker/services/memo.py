"""What a transaction has read and may use again until it ends: the rows it locked, the timer rows read
with them, the stand-ins it asked for. Nothing here outlives the transaction (or savepoint) it was read in.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy.orm import Session

#: session.info key of the current transaction's memo: (a weak reference to the transaction, the memo).
_KEY = "gridloop.memo"


def memo(session: Session) -> dict[str, Any]:
    """Return a dict that lives as long as the session's current transaction (or savepoint).

    What was read under a row lock stays true until the lock ends, which is when the transaction
    ends (a savepoint's, when it rolls back). A new transaction, or a savepoint begun or ended
    since, gets a new, empty dict; so does a session that has not begun one yet.
    """
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        return {}
    found = session.info.get(_KEY)
    if found is None or found[0]() is not transaction:
        found = session.info[_KEY] = (weakref.ref(transaction), {})
    return found[1]


__all__ = ["memo"]
