"""The vocabulary every layer speaks: resources and their ids, errors, the one protocol between
orchestrators and activities, table rows, and the events that name targets. Pure."""
