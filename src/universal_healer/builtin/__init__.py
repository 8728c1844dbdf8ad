"""Built-in plugins, written exactly like external ones."""
