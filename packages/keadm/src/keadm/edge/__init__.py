"""keadm's edge commands."""
