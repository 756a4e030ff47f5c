"""Integrations: what switchboard sends to other systems about its calls.

Beside ``tools/`` and ``store/``, never inside the bridge (docs/integrations.md): the bridge's
record sink emits what happened, these modules decide what to send and send it.

- :mod:`~switchboard.integrations.signing`: Standard Webhooks signatures (``whsec_`` secrets).
"""
