"""One screen per view: flows (main), sources, a flow's drill-down, help."""
