"""ui: the browser page served by ``api``. Its contents arrive with the web UI issue."""
