"""Port proxy: serves each app on a stable host port, switching to a new release
without dropping the port."""
