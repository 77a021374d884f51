"""Self-contained HTML reports of a risk workflow's day (chart + decision log + orders)."""
