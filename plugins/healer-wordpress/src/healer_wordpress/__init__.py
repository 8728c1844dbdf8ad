"""healer-wordpress: WordPress sites for Universal Healer.

The hooks are in :mod:`healer_wordpress.plugin`, registered as the ``universal_healer`` entry
point ``wordpress``. The pure parsers (no I/O) are :mod:`~healer_wordpress.php`,
:mod:`~healer_wordpress.wpconfig`, :mod:`~healer_wordpress.phpserial`,
:mod:`~healer_wordpress.versions`, :mod:`~healer_wordpress.logs` and
:mod:`~healer_wordpress.detection`; :mod:`~healer_wordpress.site` reads a site through its host;
:mod:`~healer_wordpress.checks`, :mod:`~healer_wordpress.strategies` and
:mod:`~healer_wordpress.backup` are what the hooks hand to core.
"""

STACK_ID = "wordpress"
"""The stack this plugin serves. Core's fallback signatures declare it; this plugin adds to it."""

__all__ = ["STACK_ID"]
