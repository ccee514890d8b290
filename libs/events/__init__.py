"""The only code the Tocsin services share: the bus, the event contracts and the pure domain."""
