"""Venues behind the rig's orders: the seam every venue speaks (domain.execution's
ExecutionEvent / VenueOrderStatus), the sinks that carry asynchronous events to the order
workflows, a contract-test runner shared by every venue, and the adapters (`venues.ibkr`)."""
