"""healer-deno: teaches Universal Healer to recognise and diagnose Deno applications.

The hooks are in :mod:`healer_deno.plugin` (the ``universal_healer`` entry point), the checks
in :mod:`healer_deno.checks`, and the pure reading of ``deno.json`` in :mod:`healer_deno.config`.
"""

STACK_ID = "deno"
"""The stack this plugin declares; applications of it are stored with this id."""

__all__ = ["STACK_ID"]
