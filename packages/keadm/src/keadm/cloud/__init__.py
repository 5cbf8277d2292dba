"""keadm's cloud commands."""
