"""The Temporal contract and the message models workflows, activities and the CLI share."""
