"""The environment a started process gets: what any process needs, nothing of the caller's.

A service reads its settings (TRADE_OPS_*, from the stack) and its own credentials (a
secrets directory); it does not inherit the shell of whoever ran `trade-ops up`, whose
environment may hold tokens, cloud keys or another stack's settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["PASSED", "least_env"]

# A process needs these to run at all (PATH, HOME, locale, temp dir), and PYTHONPATH /
# VIRTUAL_ENV so the interpreter finds the same code as trade-ops itself.
PASSED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH",
          "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR")


def least_env(extra: Mapping[str, str] | None = None, *, lake_uri: str = "",
              source: Mapping[str, str] | None = None) -> dict[str, str]:
    """PASSED and the LC_* locale variables from `source` (os.environ), then `extra`.

    A lake on object storage (s3://) also gets the AWS_* variables: the storage options
    deltalake reads, as the stack file documents.
    """
    env_in = os.environ if source is None else source
    wanted = [k for k in env_in if k in PASSED or k.startswith("LC_")]
    if "://" in lake_uri:
        wanted += [k for k in env_in if k.startswith("AWS_")]
    return {**{k: env_in[k] for k in wanted}, **(extra or {})}
