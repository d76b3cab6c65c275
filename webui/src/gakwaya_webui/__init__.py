"""The Gakwaya web dashboard, a plugin like any other (imports only ``gakwaya_sdk``)."""
