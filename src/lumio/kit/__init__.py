"""The kit: what every domain uses (settings, errors, resources, the principal, problems, loops, the clock).

It imports no domain and no registry module."""
