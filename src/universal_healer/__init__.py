"""Universal Healer: find, recognise, diagnose and heal web applications."""
