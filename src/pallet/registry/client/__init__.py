"""The registry client: pull and push over the Docker Registry HTTP API v2 / OCI distribution spec.

``pull.pull`` and ``push.push`` are the entry points; ``credentials`` keeps
``pallet login`` state in docker's ``config.json`` format. Heavy imports
(urllib3, rich) load only when a transfer starts.
"""
