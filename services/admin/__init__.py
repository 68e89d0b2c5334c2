"""``clipmix-admin``, the operator's command line: each service's commands, in one tool."""
