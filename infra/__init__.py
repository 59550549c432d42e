"""One customer's deployment: the ARM template, the Marketplace UI definition, and their offline checks."""
