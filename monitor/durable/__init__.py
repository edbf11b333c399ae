"""Redis primitives shared by incidents and paging: timers, the event stream, the connection."""
