"""Built-in workflow steps. Importing this package registers them."""
